/**
 * What a test measured or saw along the way (timings, a summary of a run, the answers in the explorer),
 * printed only when asked for with `TEST_REPORT=1`: a passing `npm test` prints Jest's own lines and
 * nothing else. Failures say what they need in their assertion messages.
 */
export function report(text: string): void {
  if (process.env.TEST_REPORT === '1') console.log(text);
}
