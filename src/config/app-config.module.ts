import { DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { AppConfig, Env, loadAppConfig } from './app-config';

/**
 * Reads the environment (and a `.env` file, if present) once, validates it into `AppConfig`, and makes
 * that typed object injectable everywhere. Tests pass an explicit environment and nothing else is read.
 */
@Global()
@Module({})
export class AppConfigModule {
  static forRoot(explicitEnv?: Env): DynamicModule {
    return {
      module: AppConfigModule,
      imports: [
        ConfigModule.forRoot({
          ignoreEnvFile: explicitEnv !== undefined,
          ignoreEnvVars: explicitEnv !== undefined,
          validate: (environment) => ({ app: loadAppConfig(explicitEnv ?? environment) }),
        }),
      ],
      providers: [{ provide: AppConfig, inject: [ConfigService], useFactory: (config: ConfigService) => config.getOrThrow<AppConfig>('app') }],
      exports: [AppConfig],
    };
  }
}
