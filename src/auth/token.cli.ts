import { loadAppConfig, ConfigValidationError } from '../config/app-config';
import { readEnvironment } from '../config/app-config.module';
import { issueToken } from './dev-token';

/** `npm run token -- <user id>`: prints a bearer token for that user, valid for 30 days. */
async function main(): Promise<void> {
  const userId = process.argv[2]?.trim();
  if (!userId) {
    console.error('Usage: npm run token -- <user id>    (for example: npm run token -- alice)');
    process.exit(2);
  }
  const config = loadAppConfig(readEnvironment());
  console.log(await issueToken(config.auth, userId));
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigValidationError || error instanceof Error ? error.message : String(error));
  process.exit(1);
});
