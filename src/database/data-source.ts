import 'reflect-metadata';
import { loadAppConfig } from '../config/app-config';
import { readEnvironment } from '../config/app-config.module';
import { AppDataSource, dataSourceOptions } from './database.options';

/**
 * The data source of TypeORM's CLI (`npm run migration:generate`, `migration:revert`, `migration:show`):
 * the app's entities and migrations, on the database the app's configuration names (environment and
 * `.env`, validated the same way).
 */
export default new AppDataSource({
  ...dataSourceOptions(loadAppConfig(readEnvironment()).database),
  migrationsRun: false,
});
