/**
 * Every relative link in README.md and docs/*.md (any page added there later included) leads somewhere:
 * the file exists, and an anchor names a heading of the page it points into, as GitHub makes heading
 * anchors.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const ROOT = join(__dirname, '..');

/** The text outside fenced code blocks and inline code, where links and headings are markdown. */
function prose(markdown: string): string {
  return markdown
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '')
    .replace(/`[^`\n]*`/g, (code) => code.replace(/[[\]()#]/g, ' '));
}

/** GitHub's anchor for a heading: its text lower-cased, punctuation dropped, spaces to hyphens. */
export function githubSlug(heading: string): string {
  return heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link's text
    .replace(/[`*]/g, '')
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of a markdown page: its headings' (a repeated one gets -1, -2, …), and explicit ids. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const [, text] of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const slug = githubSlug(text);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    anchors.add(count === 0 ? slug : `${slug}-${count}`);
  }
  for (const [, id] of markdown.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) anchors.add(id);
  return anchors;
}

/** Each relative link of a page that does not resolve, with why. */
export function brokenLinks(page: string, markdown: string): string[] {
  const problems: string[] = [];
  for (const [link, target] of prose(markdown).matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [path, anchor] = target.split('#', 2) as [string, string | undefined];
    const file = path === '' ? page : join(dirname(page), decodeURIComponent(path));
    if (!existsSync(file)) {
      problems.push(`${relative(ROOT, page)}: ${link}: no file ${relative(ROOT, file)}`);
      continue;
    }
    if (anchor === undefined || anchor === '') continue;
    if (statSync(file).isDirectory() || !file.endsWith('.md')) {
      problems.push(`${relative(ROOT, page)}: ${link}: an anchor into ${relative(ROOT, file)}, which has no headings`);
    } else if (!anchorsOf(readFileSync(file, 'utf8')).has(decodeURIComponent(anchor))) {
      problems.push(`${relative(ROOT, page)}: ${link}: ${relative(ROOT, file)} has no heading #${anchor}`);
    }
  }
  return problems;
}

const PAGES = [
  join(ROOT, 'README.md'),
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join(ROOT, 'docs', name)),
];

describe('links in README.md and docs/', () => {
  it('makes anchors as GitHub does', () => {
    expect(githubSlug('The `advanced-notes` command')).toBe('the-advanced-notes-command');
    expect(githubSlug('Object keys: one bucket, one prefix per environment')).toBe(
      'object-keys-one-bucket-one-prefix-per-environment',
    );
    expect(githubSlug('Typed client (TypeScript)')).toBe('typed-client-typescript');
    expect(githubSlug('SQLite through better-sqlite3')).toBe('sqlite-through-better-sqlite3');
    expect(githubSlug('`MIGRATIONS_RUN` and [a link](x.md)')).toBe('migrations_run-and-a-link');
    expect([...anchorsOf('# Notes\n\n## Notes\n\n```sh\n# not a heading\n```\n')]).toEqual(['notes', 'notes-1']);
  });

  it('finds a link that leads nowhere, and one whose anchor names no heading', () => {
    const page = join(ROOT, 'docs', 'a-page.md');
    expect(
      brokenLinks(page, '[ok](../README.md#the-upload-and-playback-flow) [gone](missing.md) [no](../README.md#nope)'),
    ).toEqual([
      'docs/a-page.md: [gone](missing.md): no file docs/missing.md',
      'docs/a-page.md: [no](../README.md#nope): README.md has no heading #nope',
    ]);
  });

  it.each(PAGES.map((page) => [relative(ROOT, page), page]))('every relative link in %s resolves', (_name, page) => {
    expect(brokenLinks(page, readFileSync(page, 'utf8'))).toEqual([]);
  });
});
