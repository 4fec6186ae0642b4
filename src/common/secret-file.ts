import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * A random secret kept in a file, made on first use: development setups get stable signing keys
 * across restarts without anyone having to configure one.
 */
export async function loadOrCreateSecret(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(32);
  await mkdir(dirname(path), { recursive: true });
  try {
    await writeFile(path, secret, { mode: 0o600, flag: 'wx' });
    return secret;
  } catch (error) {
    // Another instance sharing the folder created it first: use theirs so both sign alike.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readFile(path);
    throw error;
  }
}
