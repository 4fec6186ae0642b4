import { DynamicModule, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AudioClipsModule } from './audio-clips/audio-clips.module';
import { AppConfig } from './config/app-config';
import { AppConfigModule } from './config/app-config.module';
import { dataSourceOptions } from './database/database.options';
import { HealthController } from './health/health.controller';
import { NotesModule } from './notes/notes.module';
import { StorageModule } from './storage/storage.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        TypeOrmModule.forRootAsync({ inject: [AppConfig], useFactory: (config: AppConfig) => dataSourceOptions(config.database) }),
        StorageModule,
        NotesModule,
        AudioClipsModule,
      ],
      controllers: [HealthController],
    };
  }
}
