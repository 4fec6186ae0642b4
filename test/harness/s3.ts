import S3rver from '@20minutes/s3rver';
import type { ScratchRoot } from './scratch';
import type { Service } from './service';

const LOCAL_BUCKET = 'advanced-notes-test';
const LOCAL_REGION = 'us-east-1';
// s3rver's built-in account (lib/models/account.js).
const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

const EXTERNAL_REQUIRED = ['S3_BUCKET', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'] as const;

/** The store named by S3_ENDPOINT_URL if set, otherwise a local s3rver. */
export async function startS3(scratch: ScratchRoot): Promise<Service> {
  const endpoint = process.env.S3_ENDPOINT_URL?.trim();
  return endpoint ? externalS3(endpoint) : startS3rver(scratch.s3rverDir);
}

function externalS3(endpoint: string): Service {
  const missing = EXTERNAL_REQUIRED.filter((name) => !process.env[name]?.trim());
  if (missing.length > 0) {
    throw new Error(
      `e2e harness: S3_ENDPOINT_URL is set (${endpoint}), so the tests use that store, but ${missing.join(', ')} ` +
        `${missing.length === 1 ? 'is' : 'are'} not set. Set ${missing.length === 1 ? 'it' : 'them'}, or unset S3_ENDPOINT_URL to use a local s3rver.`,
    );
  }
  const env = (name: (typeof EXTERNAL_REQUIRED)[number]): string => process.env[name]!.trim();
  return {
    description: `external S3 at ${endpoint}, bucket ${env('S3_BUCKET')}`,
    env: s3Env(endpoint, env('S3_BUCKET'), env('AWS_REGION'), env('AWS_ACCESS_KEY_ID'), env('AWS_SECRET_ACCESS_KEY')),
    stop: async () => {},
  };
}

async function startS3rver(directory: string): Promise<Service> {
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    // Created on disk directly: s3rver mis-verifies bucket-level SDK calls (trailing slash in the signed path).
    configureBuckets: [{ name: LOCAL_BUCKET }],
  });
  let port: number;
  try {
    ({ port } = await server.run());
  } catch (err) {
    throw new Error(`e2e harness: s3rver could not start: ${String(err)}`, { cause: err });
  }
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    description: `s3rver at ${endpoint}, bucket ${LOCAL_BUCKET}`,
    env: {
      ...s3Env(endpoint, LOCAL_BUCKET, LOCAL_REGION, LOCAL_CREDENTIALS.accessKeyId, LOCAL_CREDENTIALS.secretAccessKey),
      // Where s3rver keeps the objects: its bucket listing cannot be signed by the SDK (see above).
      TEST_S3RVER_DIR: directory,
    },
    stop: () => server.close(),
  };
}

function s3Env(
  endpoint: string,
  bucket: string,
  region: string,
  keyId: string,
  secret: string,
): Record<string, string> {
  return {
    TEST_S3_ENDPOINT_URL: endpoint,
    TEST_S3_BUCKET: bucket,
    TEST_AWS_REGION: region,
    TEST_AWS_ACCESS_KEY_ID: keyId,
    TEST_AWS_SECRET_ACCESS_KEY: secret,
  };
}
