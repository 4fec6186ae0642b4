import { randomBytes } from 'node:crypto';
import { startLocalPostgres } from './local-postgres';
import { dropDatabasesStartingWith, withAdmin } from './pg-admin';
import type { ScratchRoot } from './scratch';
import type { Service } from './service';

/** The server named by TEST_DATABASE_URL if set, otherwise a throwaway embedded Postgres. */
export async function startPostgres(scratch: ScratchRoot): Promise<Service> {
  const externalUrl = process.env.TEST_DATABASE_URL?.trim();
  const server = externalUrl
    ? await checkExternalPostgres(externalUrl)
    : await startLocalPostgres(scratch.postgresDataDir);
  const adminUrl = server.env.TEST_PG_URL;
  // Test databases carry the run's tag, so teardown can drop those a test left behind on a long-lived server.
  const dbPrefix = `test_${randomBytes(4).toString('hex')}_`;
  return {
    description: server.description,
    env: { ...server.env, TEST_PG_DB_PREFIX: dbPrefix },
    stop: async () => {
      try {
        if (externalUrl) await dropDatabasesStartingWith(adminUrl, dbPrefix);
      } finally {
        await server.stop();
      }
    },
  };
}

async function checkExternalPostgres(url: string): Promise<Service> {
  let version: string;
  try {
    version = await withAdmin(url, async (admin) => {
      const { rows } = await admin.query<{ version: string; can_create: boolean }>(
        `SELECT current_setting('server_version') AS version, rolsuper OR rolcreatedb AS can_create
           FROM pg_roles WHERE rolname = current_user`,
      );
      if (!rows[0]?.can_create) throw new Error('its role may not CREATE DATABASE');
      return rows[0].version;
    });
  } catch (err) {
    throw new Error(`e2e harness: TEST_DATABASE_URL (${redact(url)}) is not usable: ${String(err)}`, { cause: err });
  }
  return {
    description: `Postgres ${version} at ${redact(url)} (TEST_DATABASE_URL)`,
    env: { TEST_PG_URL: url },
    stop: async () => {},
  };
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparsable URL>';
  }
}
