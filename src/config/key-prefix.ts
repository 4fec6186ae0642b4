/**
 * The object-key prefix isolates environments inside one bucket. Aliases collapse to one
 * canonical name so `production`, `prod` and `live` never end up as three key trees.
 */
const PREFIX_ALIASES: Readonly<Record<string, string>> = {
  production: 'prod',
  prod: 'prod',
  live: 'prod',
  development: 'dev',
  dev: 'dev',
  local: 'dev',
  staging: 'staging',
  stage: 'staging',
};

/** Variables consulted for the prefix, strongest first. `NODE_ENV` is the last resort because this is Node. */
export const PREFIX_SOURCES = ['S3_KEY_PREFIX', 'APP_ENV', 'ENV', 'FLASK_ENV', 'NODE_ENV'] as const;
export type PrefixSource = (typeof PREFIX_SOURCES)[number];

export const DEFAULT_KEY_PREFIX = 'dev';

const PREFIX_SEGMENT = /^[a-z0-9][a-z0-9._-]*$/;

export class InvalidKeyPrefixError extends Error {
  /** The variable the bad value came from, once known. */
  source?: PrefixSource;
}

/**
 * Normalizes one prefix value: case, surrounding spaces and slashes are ignored, aliases are
 * collapsed, and anything that would make an untidy or unsafe key (`..`, spaces, `//`) is rejected.
 */
export function normalizeKeyPrefix(raw: string): string {
  const trimmed = raw
    .trim()
    .replace(/^\/+|\/+$/g, '')
    .trim()
    .toLowerCase();
  const alias = PREFIX_ALIASES[trimmed];
  if (alias) return alias;
  const segments = trimmed.split('/');
  if (trimmed === '' || !segments.every((segment) => PREFIX_SEGMENT.test(segment) && !/^\.+$/.test(segment))) {
    throw new InvalidKeyPrefixError(
      `"${raw}" is not a usable key prefix: use letters, digits, ".", "_" or "-", optionally in "/"-separated segments`,
    );
  }
  return trimmed;
}

export interface ResolvedKeyPrefix {
  prefix: string;
  /** Which variable supplied it, or `default`; error messages and the start-up log name it. */
  source: PrefixSource | 'default';
}

/** Picks the first non-blank variable in precedence order and normalizes it. */
export function resolveKeyPrefix(env: Readonly<Record<string, string | undefined>>): ResolvedKeyPrefix {
  for (const source of PREFIX_SOURCES) {
    const value = env[source];
    if (
      value !== undefined &&
      value
        .trim()
        .replace(/^\/+|\/+$/g, '')
        .trim() !== ''
    ) {
      try {
        return { prefix: normalizeKeyPrefix(value), source };
      } catch (error) {
        if (error instanceof InvalidKeyPrefixError) error.source = source;
        throw error;
      }
    }
  }
  return { prefix: DEFAULT_KEY_PREFIX, source: 'default' };
}
