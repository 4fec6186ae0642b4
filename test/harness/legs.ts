/**
 * Optional legs of the e2e suite: servers that come from Debian's packages rather than npm (Ceph's RADOS
 * Gateway today), so a developer's machine may lack them. The convention:
 *
 * - A leg's starter throws `LegUnavailable` when what it needs is not installed. Any other failure is
 *   a real failure and stops the run.
 * - Outside CI a missing leg is skipped, and said so loudly: at the start of the run, in the titles of
 *   its skipped tests, and again after the summary. Never silently.
 * - With `CI` set (`.ci/run` installs the packages) a missing leg fails the run.
 * - `TEST_SKIP_LEGS=rgw,…` skips legs on purpose (to run one unrelated spec quickly); also loud, and
 *   refused in CI.
 *
 * Global setup records each leg's outcome in the environment the test workers inherit; specs ask
 * `legRuns(name)` or use `describeIfLeg` / `describeEachWithLegs`, which mark the skipped tests as such.
 */

/** What a starter throws when the leg's prerequisites are missing (not when they fail). */
export class LegUnavailable extends Error {}

export interface LegOutcome {
  readonly name: string;
  /** Undefined when the leg runs. */
  readonly skippedBecause?: string;
}

const ENV_PREFIX = 'TEST_LEG_';
const RUNS = 'runs';

export function inCi(): boolean {
  const ci = process.env.CI?.trim().toLowerCase();
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

function skippedOnPurpose(name: string): boolean {
  return (process.env.TEST_SKIP_LEGS ?? '')
    .split(',')
    .map((leg) => leg.trim().toLowerCase())
    .includes(name);
}

/**
 * Starts an optional leg. Resolves to the started thing, or to `undefined` when the leg is skipped
 * (outside CI, prerequisites missing or skipped on purpose); rejects on any real failure, and in CI
 * when the leg cannot run at all.
 */
export async function startOptionalLeg<T>(
  name: string,
  start: () => Promise<T>,
): Promise<{ started?: T; outcome: LegOutcome }> {
  if (skippedOnPurpose(name)) {
    if (inCi()) throw new Error(`e2e harness: TEST_SKIP_LEGS names "${name}", but in CI (CI is set) every leg runs.`);
    return { outcome: { name, skippedBecause: 'skipped on purpose: TEST_SKIP_LEGS names it' } };
  }
  try {
    return { started: await start(), outcome: { name } };
  } catch (error) {
    if (!(error instanceof LegUnavailable)) throw error;
    if (inCi()) {
      throw new Error(`e2e harness: the ${name} leg cannot run in CI (CI is set): ${error.message}`, { cause: error });
    }
    return { outcome: { name, skippedBecause: error.message } };
  }
}

/** Hands the outcomes to the test workers (forked after global setup, so they inherit process.env). */
export function publishLegOutcomes(outcomes: readonly LegOutcome[]): void {
  for (const outcome of outcomes) {
    process.env[ENV_PREFIX + outcome.name.toUpperCase()] = outcome.skippedBecause ?? RUNS;
  }
}

/** The loud notice for legs that did not run: printed at the start and again after the summary. */
export function skippedLegsBanner(outcomes: readonly LegOutcome[]): string | undefined {
  const skipped = outcomes.filter((outcome) => outcome.skippedBecause !== undefined);
  if (skipped.length === 0) return undefined;
  const rule = '!'.repeat(100);
  return [
    '',
    rule,
    `!!! ${skipped.length === 1 ? 'ONE LEG' : `${skipped.length} LEGS`} OF THE E2E SUITE DID NOT RUN:`,
    ...skipped.map((outcome) => `!!!   ${outcome.name.toUpperCase()}: ${outcome.skippedBecause}`),
    '!!! Its tests are reported as skipped. CI (CI=true) runs every leg and fails when one cannot run.',
    rule,
    '',
  ].join('\n');
}

/** Reads the outcomes back in global teardown (same process as global setup). */
export function publishedLegOutcomes(): LegOutcome[] {
  return Object.entries(process.env)
    .filter(([key]) => key.startsWith(ENV_PREFIX))
    .map(([key, value]) => ({
      name: key.slice(ENV_PREFIX.length).toLowerCase(),
      skippedBecause: value === RUNS ? undefined : value,
    }));
}

/** Why the leg does not run in this test worker, or undefined when it runs. */
export function whyLegSkipped(name: string): string | undefined {
  const value = process.env[ENV_PREFIX + name.toUpperCase()];
  if (value === undefined) {
    return 'global setup did not start it (run the e2e tests through jest with test/harness/global-setup.ts)';
  }
  return value === RUNS ? undefined : value;
}

export function legRuns(name: string): boolean {
  return whyLegSkipped(name) === undefined;
}

/** `describe` when the leg runs; otherwise `describe.skip`, with the reason in the title. */
export function describeIfLeg(name: string): (title: string, body: () => void) => void {
  const why = whyLegSkipped(name);
  return why === undefined
    ? (title, body) => describe(title, body)
    : (title, body) => describe.skip(`${title} [${name.toUpperCase()} LEG SKIPPED: ${why}]`, body);
}

/**
 * `describe.each` over a matrix whose rows may need a leg (a row needs the legs whose names appear
 * among its values, e.g. 'rgw'): rows whose leg does not run become skipped describes, titled so.
 */
export function describeEachWithLegs<Row extends unknown[]>(
  rows: readonly Row[],
  legs: readonly string[],
): (title: string, body: (...row: Row) => void) => void {
  return (title, body) => {
    for (const row of rows) {
      const missing = legs.find((leg) => row.includes(leg) && !legRuns(leg));
      const rowTitle = formatTitle(title, row);
      if (missing === undefined) describe(rowTitle, () => body(...row));
      else
        describe.skip(`${rowTitle} [${missing.toUpperCase()} LEG SKIPPED: ${whyLegSkipped(missing)}]`, () =>
          body(...row));
    }
  };
}

/** The `%s` placeholders of describe.each, filled in order. */
function formatTitle(title: string, row: readonly unknown[]): string {
  let index = 0;
  return title.replace(/%s/g, () => String(row[index++]));
}
