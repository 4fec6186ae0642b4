import { Controller, Get, Module, NotFoundException, Param } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ExpressAdapter } from '@nestjs/platform-express';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Repository } from 'typeorm';
import { AudioClip } from '../src/audio-clips/audio-clip.entity';
import { ENTITIES } from '../src/database/database.options';
import { s3ClientOptions } from '../src/storage/s3-storage.driver';

/**
 * "The obvious stack", kept only for comparison: the Express adapter, TypeORM `findOne` with full
 * entity hydration, and the SDK's `getSignedUrl` on every request, as tutorials write it.
 */
const env = process.env;
// The app's client settings, but the SDK's own SHA-256: nothing of the app's signing work is borrowed.
const { sha256: _keyCaching, ...clientOptions } = s3ClientOptions({
  bucket: env.S3_BUCKET!,
  region: env.AWS_REGION!,
  endpointUrl: env.S3_ENDPOINT_URL,
  credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
});
const s3 = new S3Client(clientOptions);

@Controller('api')
class ObviousController {
  constructor(@InjectRepository(AudioClip) private readonly clips: Repository<AudioClip>) {}

  @Get('audio-clips/:id/playback')
  async playback(@Param('id') id: string) {
    const clip = await this.clips.findOne({ where: { id } });
    if (!clip) throw new NotFoundException();
    const url = await getSignedUrl(s3, new GetObjectCommand({ Bucket: env.S3_BUCKET!, Key: clip.storageKey }), {
      expiresIn: 900,
    });
    return { url, expires_at: new Date(Date.now() + 900_000).toISOString() };
  }
}

@Module({
  imports: [
    TypeOrmModule.forRoot({
      type: 'better-sqlite3',
      database: env.DATABASE_URL!.slice('sqlite:'.length),
      entities: ENTITIES,
    }),
    TypeOrmModule.forFeature([AudioClip]),
  ],
  controllers: [ObviousController],
})
class ObviousModule {}

export async function startObviousStack(port: number): Promise<void> {
  const app = await NestFactory.create(ObviousModule, new ExpressAdapter(), { logger: ['error'] });
  await app.listen(port, '127.0.0.1');
}
