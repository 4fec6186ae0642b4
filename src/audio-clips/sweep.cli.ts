import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { discardBufferedLogs } from '../app.factory';
import { AppModule } from '../app.module';
import { ConfigValidationError } from '../config/app-config';
import { AppConfigModule, readEnvironment } from '../config/app-config.module';
import { StartupError } from '../common/startup-error';
import { AudioClipJanitor } from './audio-clip-janitor.service';
import { describeJanitorReport } from './janitor-report';

/**
 * `npm run sweep`: one janitor pass from outside the server (cron, a Kubernetes CronJob): expires
 * uploads never completed and works through the pending storage deletions. Safe beside running servers.
 * Prints what it did for a person, or with `--json` the report as one JSON line for scripts.
 */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const unknown = args.filter((arg) => arg !== '--json');
  if (unknown.length > 0) {
    console.error(`Unknown argument ${unknown.join(' ')}. Usage: npm run sweep [-- --json]`);
    process.exit(2);
  }
  // One pass and out: no timer, and no metrics port (the server's own may be running beside it).
  const appConfig = await AppConfigModule.forRoot({
    env: { ...readEnvironment(), JANITOR_INTERVAL_SECONDS: '0', METRICS_PORT: '0' },
  });
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(appConfig), {
    logger: ['warn', 'error'],
    abortOnError: false,
    bufferLogs: true,
    autoFlushLogs: false,
  }).catch((error: unknown) => {
    discardBufferedLogs();
    throw error;
  });
  app.flushLogs();
  try {
    const report = await app.get(AudioClipJanitor).runOnce();
    console.log(json ? JSON.stringify(report) : describeJanitorReport(report));
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
