import 'reflect-metadata';
import { ConfigValidationError, loadAppConfig } from '../config/app-config';
import { readEnvironment } from '../config/app-config.module';
import { StartupError } from '../common/startup-error';
import { dataSourceOptions, openDatabase } from './database.options';

/**
 * `npm run migration:run`: applies pending migrations as the server does at start-up, under the same lock,
 * for deployments that migrate as a separate step (MIGRATIONS_RUN=false on the servers).
 */
async function main(): Promise<void> {
  const config = loadAppConfig(readEnvironment());
  const dataSource = await openDatabase({ ...dataSourceOptions(config.database), migrationsRun: true });
  await dataSource.destroy();
}

main().catch((error: unknown) => {
  const message =
    error instanceof ConfigValidationError || error instanceof StartupError
      ? error.message
      : error instanceof Error
        ? (error.stack ?? error.message)
        : String(error);
  console.error(`Migrations not run: ${message}`);
  process.exit(1);
});
