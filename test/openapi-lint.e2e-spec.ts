/**
 * openapi.json is what mobile teams generate Swift and Kotlin clients from: Redocly's linter (a tool no
 * one here wrote) with its recommended rules (redocly.yaml says which are off, and why) finds nothing.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..');

interface LintProblem {
  ruleId: string;
  severity: 'error' | 'warn';
  message: string;
  location: { pointer: string }[];
}

describe('the committed openapi.json under Redocly’s linter', () => {
  it('has no error and no warning', async () => {
    // Exit code 1 with errors; the JSON report lists warnings too.
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [require.resolve('@redocly/cli/bin/cli.js'), 'lint', 'openapi.json', '--format=json', '--max-problems=1000'],
      {
        cwd: ROOT,
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
        maxBuffer: 64 * 1024 * 1024,
      },
    ).catch((error: { stdout: string }) => error);
    const report: { problems: LintProblem[] } = JSON.parse(stdout.slice(stdout.indexOf('{')));
    const problems = report.problems.map(
      (problem) => `${problem.severity} ${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`,
    );
    expect(problems).toEqual([]);
  }, 120_000);
});
