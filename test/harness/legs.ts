import { appendFileSync, existsSync, readFileSync } from 'node:fs';

/**
 * Legs of the suite that need something npm cannot provide (a Debian package such as `chromium`).
 * Where it is missing, a developer's `npm test` says so LOUDLY, in the test's output and again at the
 * end of the run, and the run goes on; in CI (`CI=true`, as `.ci/run` sets it and installs the package)
 * the leg is mandatory and its absence fails the run. Never a silent skip.
 */
export type LegAvailability = { available: true } | { available: false; reason: string };

/** Where the workers note the legs that did not run, for the global teardown's summary (set by global setup). */
export const SKIPPED_LEGS_ENV = 'TEST_SKIPPED_LEGS_FILE';

export function describeOptionalLeg(name: string, availability: LegAvailability, body: () => void): void {
  if (availability.available) {
    describe(name, body);
    return;
  }
  const { reason } = availability;
  if (process.env.CI === 'true') {
    describe(name, () => {
      it('is mandatory in CI', () => {
        throw new Error(`${name} could not run: ${reason}. With CI=true this leg must run (.ci/run installs it).`);
      });
    });
    return;
  }
  const line = `${name} did NOT run: ${reason}`;
  process.stderr.write(`\n${'!'.repeat(100)}\n!!! ${line}\n${'!'.repeat(100)}\n\n`);
  const file = process.env[SKIPPED_LEGS_ENV];
  if (file) appendFileSync(file, `${line}\n`);
  describe(name, () => {
    it.skip(`did not run: ${reason}`, () => {});
  });
}

/** Available when the file exists (a program installed by a Debian package). */
export function programAt(path: string, install: string): LegAvailability {
  return existsSync(path)
    ? { available: true }
    : { available: false, reason: `${path} is missing (install it with: ${install})` };
}

/** The lines of the legs that did not run in this run, for the summary at its end. */
export function skippedLegs(file: string | undefined): string[] {
  if (!file || !existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean);
}
