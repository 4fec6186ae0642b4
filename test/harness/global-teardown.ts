import { forgetHarness, stopServices } from './service';

export default async function globalTeardown(): Promise<void> {
  const harness = forgetHarness();
  if (!harness) return;
  try {
    await stopServices(harness.services);
  } finally {
    await harness.scratch.remove();
  }
}
