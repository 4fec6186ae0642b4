import { SKIPPED_LEGS_ENV, skippedLegs } from './legs';
import { forgetHarness, stopServices } from './service';

export default async function globalTeardown(): Promise<void> {
  const harness = forgetHarness();
  if (!harness) return;
  const skipped = skippedLegs(process.env[SKIPPED_LEGS_ENV]);
  if (skipped.length > 0) {
    console.warn(
      `\n!!! ${skipped.length} optional leg(s) did NOT run (CI=true makes them mandatory):\n${skipped.map((line) => `!!!   ${line}`).join('\n')}\n`,
    );
  }
  try {
    await stopServices(harness.services);
  } finally {
    await harness.scratch.remove();
  }
}
