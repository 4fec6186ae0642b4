import { publishedLegOutcomes, skippedLegsBanner } from './legs';
import { forgetHarness, stopServices } from './service';

export default async function globalTeardown(): Promise<void> {
  const harness = forgetHarness();
  if (!harness) return;
  try {
    await stopServices(harness.services);
  } finally {
    await harness.scratch.remove();
    // Again after Jest's summary, where it cannot be missed.
    const banner = skippedLegsBanner(publishedLegOutcomes());
    if (banner) console.warn(banner);
  }
}
