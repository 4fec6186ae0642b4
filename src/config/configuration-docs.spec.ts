import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const sorted = (names: Iterable<string>) => [...new Set(names)].sort();

/** Every `NAME` in the first column of the README's variable tables (configuration, limits and timeouts). */
function readmeVariables(): string[] {
  // A subject's own page documents its variables in a table of the same shape.
  const readme = read('README.md') + '\n\n' + read('docs/renditions.md');
  const tables = readme.split('| Variable |').slice(1);
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
  it('finds the README table and the example file', () => {
    expect(readmeVariables()).toEqual(expect.arrayContaining(['PORT', 'DATABASE_URL', 'LEGACY_OWNER_ID']));
    expect(envExampleVariables()).toEqual(expect.arrayContaining(['PORT', 'DATABASE_URL']));
  });

  it('.env.example lists every variable of the README table, and nothing else', () => {
    const documented = readmeVariables();
    const extra = ['AWS_SESSION_TOKEN']; // in the table's text, beside the credentials it goes with
    expect(envExampleVariables()).toEqual(sorted([...documented, ...extra]));
  });

  it('the README table documents every variable the configuration reads', () => {
    const documented = new Set([...readmeVariables(), ...envExampleVariables(), 'AWS_DEFAULT_REGION']);
    expect(configVariables().filter((name) => !documented.has(name))).toEqual([]);
  });
});
