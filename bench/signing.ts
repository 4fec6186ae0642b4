import 'reflect-metadata';
import { createS3Client, S3StorageDriver } from '../src/storage/s3-storage.driver';

/**
 * `npm run bench:signing`: CPU per playback URL, the SDK's `getSignedUrl` against the presigner the
 * app keeps (same URL, byte for byte: see s3-storage.driver.spec.ts). Interleaved rounds, so machine
 * noise hits both alike.
 */
async function main(): Promise<void> {
  const config = { bucket: 'advanced-notes-audio', region: 'us-east-1', endpointUrl: 'http://127.0.0.1:9000', credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' } };
  const driver = new S3StorageDriver(createS3Client(config), config.bucket, config);
  const key = 'prod/audio-clips/0b8c8f2e-1d5a-4f53-9d0e-1b2c3d4e5f60.m4a';
  const rounds = 5;
  const perRound = 4000;
  const totals = { sdk: 0n, fast: 0n };
  for (let round = 0; round < rounds + 1; round += 1) {
    let started = process.hrtime.bigint();
    for (let i = 0; i < perRound; i += 1) await driver.presignDownloadWithSdk(key, 900, new Date());
    const sdk = process.hrtime.bigint() - started;
    started = process.hrtime.bigint();
    for (let i = 0; i < perRound; i += 1) await driver.presignDownload(key, 900);
    const fast = process.hrtime.bigint() - started;
    if (round === 0) continue; // warm-up
    totals.sdk += sdk;
    totals.fast += fast;
  }
  const micros = (total: bigint) => Number(total) / 1000 / (rounds * perRound);
  console.log(`getSignedUrl per URL:       ${micros(totals.sdk).toFixed(1)} µs`);
  console.log(`reused presigner per URL:   ${micros(totals.fast).toFixed(1)} µs`);
  console.log(`ratio: ${(Number(totals.sdk) / Number(totals.fast)).toFixed(1)}x`);
  driver.close();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
