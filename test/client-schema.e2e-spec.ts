import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const ROOT = join(__dirname, '..');
const COMMITTED = 'client/schema.d.ts';

/**
 * The typed client's types are generated from the committed openapi.json (itself checked against the
 * running app by openapi.e2e-spec.ts), so a change to the API reaches the client or fails here.
 */
describe('the generated client types', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'an-client-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('match the committed openapi.json (run `npm run client:generate`, or `npm run openapi` after changing the API)', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'));
    const script: string = pkg.scripts['client:generate'];
    expect(script).toContain(COMMITTED);
    // The very command `npm run client:generate` runs, writing elsewhere.
    const fresh = join(dir, 'schema.d.ts');
    execFileSync('sh', ['-c', script.replace(COMMITTED, fresh)], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${join(ROOT, 'node_modules', '.bin')}${delimiter}${process.env.PATH}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const committed = await readFile(join(ROOT, COMMITTED), 'utf8').catch(() => '');
    expect(committed).toBe(await readFile(fresh, 'utf8'));
  }, 60_000);
});
