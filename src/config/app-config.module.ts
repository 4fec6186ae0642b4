import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig, type Env, loadAppConfig } from './app-config';

/** Where the validated `AppConfig` sits in ConfigService (a nested object, so it never lands in process.env). */
const APP_CONFIG_KEY = 'app';

export interface AppConfigOptions {
  /** Replaces the process environment and `.env` (tests); without it both are read. */
  env?: Env;
}

/** The config module, and the config it validated (createApp needs it before Nest starts, for the HTTP adapter). */
export interface LoadedAppConfig {
  module: DynamicModule;
  config: AppConfig;
}

/**
 * `@nestjs/config` reads `.env` and the process environment (the process wins), and `loadAppConfig` is
 * its `validate` step: a bad setting throws a `ConfigValidationError` listing every problem before Nest
 * starts. Services then inject the typed `AppConfig`.
 */
@Global()
@Module({})
export class AppConfigModule {
  static async forRoot(options: AppConfigOptions = {}): Promise<LoadedAppConfig> {
    let config: AppConfig | undefined;
    const explicit = options.env;
    const configModule = await ConfigModule.forRoot({
      isGlobal: true,
      envFilePath: ENV_FILE,
      parser: parseEnvFile,
      ignoreEnvFile: explicit !== undefined,
      validatePredefined: explicit === undefined,
      skipProcessEnv: explicit !== undefined,
      validate: (raw) => {
        config = loadAppConfig(explicit ?? (raw as Env));
        // Handing the raw values back puts those of `.env` into process.env (never over what is set), so
        // libraries that read the environment themselves (the AWS SDK's AWS_PROFILE…) see them too.
        // An explicit environment stays out of process.env: tests start many apps in one process.
        return { ...(explicit === undefined ? raw : {}), [APP_CONFIG_KEY]: config };
      },
    });
    return {
      config: config!,
      module: {
        module: AppConfigModule,
        imports: [configModule],
        providers: [
          {
            provide: AppConfig,
            inject: [ConfigService],
            useFactory: (configService: ConfigService) => configService.getOrThrow<AppConfig>(APP_CONFIG_KEY),
          },
        ],
        exports: [AppConfig],
      },
    };
  }
}

/** Read from the working directory, like the data folder's defaults. */
export const ENV_FILE = '.env';

function parseEnvFile(content: Buffer): Record<string, string> {
  return parseEnv(content.toString('utf8')) as Record<string, string>;
}

/**
 * What ConfigModule reads, for the command-line tools that run without Nest (token, TypeORM's CLI):
 * the `.env` file under the process environment, parsed the same way.
 */
export function readEnvironment(envFile = ENV_FILE): Env {
  const path = resolve(envFile);
  const fromFile = existsSync(path) ? parseEnvFile(readFileSync(path)) : {};
  return { ...fromFile, ...process.env };
}
