import 'reflect-metadata';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { createS3Client, s3ClientOptions, S3StorageDriver } from '../src/storage/s3-storage.driver';

/**
 * `npm run bench:signing`: CPU per playback URL, three ways that give the same URL byte for byte
 * (see s3-storage.driver.spec.ts): the SDK's `getSignedUrl` on a client with the SDK's defaults, the
 * presigner reused on a prepared request with the SDK's default SHA-256, and the app's driver (the reused
 * presigner on the key-caching SHA-256). Interleaved rounds, so machine noise hits all alike.
 */
async function main(): Promise<void> {
  const config = {
    bucket: 'advanced-notes-audio',
    region: 'us-east-1',
    endpointUrl: 'http://127.0.0.1:9000',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  };
  const { sha256: _keyCaching, ...sdkDefaults } = s3ClientOptions(config);
  const sdkClient = new S3Client(sdkDefaults);
  const sdkDriver = new S3StorageDriver(sdkClient, config.bucket, config);
  const driver = new S3StorageDriver(createS3Client(config), config.bucket, config);
  const key = 'prod/audio-clips/0b8c8f2e-1d5a-4f53-9d0e-1b2c3d4e5f60.m4a';
  const ways = {
    'getSignedUrl (SDK defaults)': () =>
      getSignedUrl(sdkClient, new GetObjectCommand({ Bucket: config.bucket, Key: key }), { expiresIn: 900 }),
    'reused presigner, SDK SHA-256': () => sdkDriver.presignDownload(key, 900),
    'reused presigner, key-caching SHA-256 (the app)': () => driver.presignDownload(key, 900),
  };
  const rounds = 5;
  const perRound = 4000;
  const totals = new Map<string, bigint>(Object.keys(ways).map((name) => [name, 0n]));
  for (let round = 0; round < rounds + 1; round += 1) {
    for (const [name, sign] of Object.entries(ways)) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < perRound; i += 1) await sign();
      if (round > 0) totals.set(name, totals.get(name)! + process.hrtime.bigint() - started); // round 0 warms up
    }
  }
  const micros = (name: string) => Number(totals.get(name)!) / 1000 / (rounds * perRound);
  const app = micros('reused presigner, key-caching SHA-256 (the app)');
  for (const name of Object.keys(ways))
    console.log(
      `${name.padEnd(48)} ${micros(name).toFixed(1).padStart(6)} µs per URL  (${(micros(name) / app).toFixed(1)}x the app's)`,
    );
  sdkDriver.close();
  driver.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
