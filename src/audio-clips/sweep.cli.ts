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
  const config = loadAppConfig({ ...readEnvironment(), JANITOR_INTERVAL_SECONDS: '0' });
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
