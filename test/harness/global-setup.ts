import { existsSync } from 'node:fs';
import { report } from '../support/report';
import { LegUnavailable, publishLegOutcomes, skippedLegsBanner, startOptionalLeg, type LegOutcome } from './legs';
import { CHROMIUM_LEG, CHROMIUM_PATH } from './chromium';
import { checkFfmpeg, FFMPEG_LEG } from './ffmpeg';
import { startPostgres } from './postgres';
import { RGW_LEG, startRgw } from './rgw';
import { REDIS_LEG, startRedis } from './redis';
import { startS3 } from './s3';
import { createScratchRoot } from './scratch';
import { rememberHarness, stopServices, type Service } from './service';

/** Starts S3, Postgres and the optional legs (or checks the external ones) and hands their settings to the test workers. */
export default async function globalSetup(): Promise<void> {
  const startedAt = performance.now();
  const scratch = await createScratchRoot();
  const legs: LegOutcome[] = [];
  const optional = async (name: string, start: () => Promise<Service>): Promise<Service[]> => {
    const { started, outcome } = await startOptionalLeg(name, start);
    legs.push(outcome);
    return started ? [started] : [];
  };
  const results = await Promise.allSettled([
    startS3(scratch),
    startPostgres(scratch),
    optional(RGW_LEG, () => startRgw(scratch.rgwDir)),
    optional(REDIS_LEG, () => startRedis()),
  ]);
  const services = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value].flat() : []));
  const failures = results.flatMap((result) => (result.status === 'rejected' ? [result.reason as unknown] : []));
  if (failures.length > 0) {
    // Jest skips global teardown when setup throws.
    await stopServices(services).catch(() => {});
    await scratch.remove();
    throw failures.length === 1 ? failures[0] : new AggregateError(failures, failures.map(String).join('\n'));
  }

  rememberHarness({ services, scratch });
  // Test workers are forked after global setup, so they inherit these.
  for (const service of services) Object.assign(process.env, service.env);
  process.env.TEST_SQLITE_DIR = scratch.sqliteDir;
  // Not a server: the explorer test drives Debian's Chromium through playwright-core.
  const browser = await startOptionalLeg(CHROMIUM_LEG, async () => {
    if (!existsSync(CHROMIUM_PATH))
      throw new LegUnavailable(`${CHROMIUM_PATH} is missing (install it with: apt-get install chromium)`);
  });
  legs.push(browser.outcome);
  // Not a server either: the renditions tests run Debian's ffmpeg, as the server does.
  legs.push((await startOptionalLeg(FFMPEG_LEG, async () => checkFfmpeg())).outcome);
  publishLegOutcomes(legs);
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);
  report(`\ne2e harness ready in ${seconds} s: ${services.map((service) => service.description).join('; ')}`);
  const banner = skippedLegsBanner(legs);
  if (banner) console.warn(banner);
}
