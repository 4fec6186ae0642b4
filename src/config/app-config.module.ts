import { existsSync, readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigModule, ConfigService, registerAs } from '@nestjs/config';
import { AppConfig, Env } from './app-config';

const APP_NAMESPACE = 'app';

/**
 * Makes the one validated `AppConfig` injectable everywhere (services ask for `AppConfig` itself).
 * The config is validated before Nest starts, so a bad setting stops the start with a plain message.
 */
@Global()
@Module({})
export class AppConfigModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: true,
          ignoreEnvVars: true,
          load: [registerAs(APP_NAMESPACE, () => config)],
        }),
      ],
      providers: [
        {
          provide: AppConfig,
          inject: [ConfigService],
          useFactory: (configService: ConfigService) => configService.getOrThrow<AppConfig>(APP_NAMESPACE),
        },
      ],
      exports: [AppConfig],
    };
  }
}

/** The process environment over the values of a `.env` file in the working directory, if there is one. */
export function readEnvironment(envFile = '.env'): Env {
  const fromFile = existsSync(envFile) ? parseEnv(readFileSync(envFile, 'utf8')) : {};
  return { ...fromFile, ...process.env };
}
