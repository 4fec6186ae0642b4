import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module';
import { ConfigValidationError } from '../config/app-config';
import { AppConfigModule, readEnvironment } from '../config/app-config.module';
import { StartupError } from '../common/startup-error';
import { AudioClipJanitor } from './audio-clip-janitor.service';

/**
 * `npm run sweep`: one janitor pass from outside the server (cron, a Kubernetes CronJob): expires
 * uploads never completed and works through the pending storage deletions. Safe beside running servers.
 */
async function main(): Promise<void> {
  const appConfig = await AppConfigModule.forRoot({ env: { ...readEnvironment(), JANITOR_INTERVAL_SECONDS: '0' } });
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(appConfig), {
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
    error instanceof ConfigValidationError || error instanceof StartupError
      ? error.message
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error),
  );
  process.exit(1);
});
