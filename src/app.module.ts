import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { TerminusModule } from '@nestjs/terminus';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoggerModule } from 'nestjs-pino';
import { AccountModule } from './account/account.module';
import { AudioClipsModule } from './audio-clips/audio-clips.module';
import { ExportsModule } from './exports/exports.module';
import { AuthGuard } from './auth/auth.guard';
import { AuthModule } from './auth/auth.module';
import { RateLimitGuard } from './rate-limit/rate-limit.guard';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { AppConfig } from './config/app-config';
import type { LoadedAppConfig } from './config/app-config.module';
import { dataSourceOptions, openDatabase } from './database/database.options';
import { HealthController } from './health/health.controller';
import { NotesModule } from './notes/notes.module';
import { StorageModule } from './storage/storage.module';
import { SyncModule } from './sync/sync.module';
import { loggerParams, type LoggingOptions } from './operations/logging';
import { OperationsModule } from './operations/operations.module';

@Module({})
export class AppModule {
  /** `appConfig` from `AppConfigModule.forRoot()`, which reads and validates the configuration. */
  static forRoot(appConfig: LoadedAppConfig, logging: Partial<LoggingOptions> = {}): DynamicModule {
    const { config } = appConfig;
    return {
      module: AppModule,
      imports: [
        appConfig.module,
        LoggerModule.forRoot(
          loggerParams({ format: config.operations.logFormat, level: config.operations.logLevel, ...logging }),
        ),
        OperationsModule,
        TerminusModule.forRoot({ errorLogStyle: 'json' }),
        TypeOrmModule.forRootAsync({
          inject: [AppConfig],
          // openDatabase fails fast with one clear line; Nest's retries would only repeat the same error.
          useFactory: (config: AppConfig) => ({ ...dataSourceOptions(config.database), toRetry: () => false }),
          dataSourceFactory: (options) => openDatabase(options!),
        }),
        ScheduleModule.forRoot(),
        AuthModule,
        RateLimitModule,
        StorageModule,
        NotesModule,
        AudioClipsModule,
        SyncModule,
        AccountModule,
        ExportsModule,
      ],
      controllers: [HealthController],
      // In this order: the rate limit counts per signed-in user, so it needs the user first.
      providers: [
        { provide: APP_GUARD, useExisting: AuthGuard },
        { provide: APP_GUARD, useClass: RateLimitGuard },
      ],
    };
  }
}
