import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { createApp, DOCS_PATH } from './app.factory';
import { AppConfig, ConfigValidationError } from './config/app-config';
import { StartupError } from './common/startup-error';
import { exitGracefullyOnSignals } from './operations/graceful-shutdown';

async function bootstrap(): Promise<void> {
  const app = await createApp();
  const config = app.get(AppConfig);
  // Not Nest's enableShutdownHooks: that cuts requests in flight, and exits by re-raising the signal.
  exitGracefullyOnSignals(app, config.operations.shutdownGraceSeconds);
  await app.listen(config.port, config.host);
  const logger = new Logger('Bootstrap');
  const storage =
    config.storage.driver === 's3'
      ? `S3 bucket ${config.storage.s3?.bucket}`
      : `local folder ${config.storage.local?.directory}`;
  logger.log(
    `Advanced Notes API on ${config.publicBaseUrl}/api (database: ${config.database.type}, storage: ${storage}, key prefix: ${config.storage.keyPrefix}/ from ${config.storage.keyPrefixSource})`,
  );
  logger.log(`API explorer: ${config.publicBaseUrl}/${DOCS_PATH}`);
}

bootstrap().catch((error: unknown) => {
  // A bad setting is the operator's to fix: say which, without a stack trace.
  const code = (error as NodeJS.ErrnoException | null)?.code;
  const message =
    error instanceof ConfigValidationError || error instanceof StartupError
      ? error.message
      : code === 'EADDRINUSE'
        ? `${(error as Error).message}: another process has that port; set PORT to a free one.`
        : error instanceof Error
          ? (error.stack ?? error.message)
          : String(error);
  console.error(`Advanced Notes could not start: ${message}`);
  process.exit(1);
});
