import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module';
import { ConfigValidationError, loadAppConfig } from '../config/app-config';
import { readEnvironment } from '../config/app-config.module';
import { AudioClipJanitor } from './audio-clip-janitor.service';

/**
 * `npm run sweep`: one janitor pass from outside the server (cron, a Kubernetes CronJob): expires
 * uploads never completed and works through the pending storage deletions. Safe beside running servers.
 */
async function main(): Promise<void> {
  // One pass and out: no timer, and no metrics port (the server's own may be running beside it).
  const config = loadAppConfig({ ...readEnvironment(), JANITOR_INTERVAL_SECONDS: '0', METRICS_PORT: '0' });
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(config), {
    logger: ['warn', 'error'],
    abortOnError: false,
  });
  try {
    const report = await app.get(AudioClipJanitor).runOnce();
    console.log(JSON.stringify(report));
  } finally {
    await app.close();
  }
}

main().catch((error: unknown) => {
  console.error(
    error instanceof ConfigValidationError
      ? error.message
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error),
  );
  process.exit(1);
});
