import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

/**
 * Every `NAME` in the first column of the variable tables of docs/: configuration.md, and a subject's
 * own page for the variables of that subject (a table of the same shape).
 */
function documentedVariables(): string[] {
  const pages = readdirSync(join(ROOT, 'docs'))
    .filter((file) => file.endsWith('.md'))
    .map((file) => read(`docs/${file}`));
  const tables = pages.join('\n\n').split('| Variable |').slice(1);
  const rows = tables.flatMap((table) =>
    table
      .slice(0, table.indexOf('\n\n'))
      .split('\n')
      .filter((line) => line.startsWith('| `')),
  );
  return sorted(rows.flatMap((row) => [...row.split('|')[1].matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1])));
}

/** Every `NAME=` in .env.example, commented out or not. */
function envExampleVariables(): string[] {
  return sorted([...read('.env.example').matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));
}

/** Every variable name the configuration loader reads (a quoted SCREAMING_CASE literal). */
function configVariables(): string[] {
  const source = read('src/config/app-config.ts') + read('src/config/key-prefix.ts');
  return sorted([...source.matchAll(/'([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)'/g)].map((m) => m[1]));
}

describe('configuration docs', () => {
  it('finds the table of docs/configuration.md and the example file', () => {
    expect(documentedVariables()).toEqual(expect.arrayContaining(['PORT', 'DATABASE_URL', 'LEGACY_OWNER_ID']));
    expect(envExampleVariables()).toEqual(expect.arrayContaining(['PORT', 'DATABASE_URL']));
  });

  it('.env.example lists every variable of the docs/ tables, and nothing else', () => {
    const documented = documentedVariables();
    const extra = ['AWS_SESSION_TOKEN']; // in the table's text, beside the credentials it goes with
    expect(envExampleVariables()).toEqual(sorted([...documented, ...extra]));
  });

  it('the docs/ tables document every variable the configuration reads', () => {
    const documented = new Set([...documentedVariables(), ...envExampleVariables(), 'AWS_DEFAULT_REGION']);
    expect(configVariables().filter((name) => !documented.has(name))).toEqual([]);
  });
});
