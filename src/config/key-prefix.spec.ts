import {
  DEFAULT_KEY_PREFIX,
  InvalidKeyPrefixError,
  normalizeKeyPrefix,
  PREFIX_SOURCES,
  resolveKeyPrefix,
  type PrefixSource,
} from './key-prefix';

/** The design note's alias table, written out independently of the code under test. */
const ALIASES: ReadonlyArray<readonly [alias: string, canonical: string]> = [
  ['production', 'prod'],
  ['prod', 'prod'],
  ['live', 'prod'],
  ['development', 'dev'],
  ['dev', 'dev'],
  ['local', 'dev'],
  ['staging', 'staging'],
  ['stage', 'staging'],
];

const CASE_VARIANTS: ReadonlyArray<readonly [name: string, apply: (value: string) => string]> = [
  ['lower', (v) => v.toLowerCase()],
  ['UPPER', (v) => v.toUpperCase()],
  ['Title', (v) => v[0].toUpperCase() + v.slice(1)],
  ['aLtErNaTiNg', (v) => [...v].map((c, i) => (i % 2 === 0 ? c.toLowerCase() : c.toUpperCase())).join('')],
  ['AlTeRnAtInG', (v) => [...v].map((c, i) => (i % 2 === 0 ? c.toUpperCase() : c.toLowerCase())).join('')],
];

const SURROUNDINGS: ReadonlyArray<readonly [name: string, wrap: (value: string) => string]> = [
  ['bare', (v) => v],
  ['spaces', (v) => `  ${v}  `],
  ['tab and newline', (v) => `\t${v}\n`],
  ['leading slash', (v) => `/${v}`],
  ['trailing slash', (v) => `${v}/`],
  ['slashes both sides', (v) => `/${v}/`],
  ['double slashes', (v) => `//${v}//`],
  ['spaces outside slashes', (v) => ` /${v}/ `],
  ['spaces inside slashes', (v) => `/ ${v} /`],
];

const aliasCases = ALIASES.flatMap(([alias, canonical]) =>
  CASE_VARIANTS.flatMap(([caseName, applyCase]) =>
    SURROUNDINGS.map(([wrapName, wrap]) => {
      const raw = wrap(applyCase(alias));
      return { raw, canonical, label: `${alias} (${caseName}, ${wrapName}) ${JSON.stringify(raw)}` };
    }),
  ),
);

/** Values that are blank once surrounding spaces and slashes are ignored: they must fall through. */
const BLANK_VALUES = ['', ' ', '\t \n', '/', '//', ' / ', '/ /'];

/** Values the note says must be rejected: spaces inside, `..`, empty segments, and other path tricks. */
const BAD_VALUES = [
  'my env',
  'prod uction',
  'a\tb',
  'team a/notes',
  '..',
  '../prod',
  'prod/..',
  'a/../b',
  '.',
  'a/./b',
  'a//b',
  'team-a//notes',
  'a\\b',
  '..\\prod',
  'a?b',
  'a#b',
  'a%2fb',
  'ä',
  'a\u0000b',
];

function envWith(values: Partial<Record<PrefixSource, string>>): Record<string, string | undefined> {
  return { ...values };
}

describe('normalizeKeyPrefix', () => {
  it.each(aliasCases)('collapses alias $label to $canonical', ({ raw, canonical }) => {
    expect(normalizeKeyPrefix(raw)).toBe(canonical);
  });

  it.each([
    ['test', 'test'],
    ['QA', 'qa'],
    ['  Preview-42  ', 'preview-42'],
    ['/feature_x/', 'feature_x'],
    ['team-a/notes', 'team-a/notes'],
    ['Team-A/Notes', 'team-a/notes'],
    ['/team-a/notes/', 'team-a/notes'],
    ['a/b/c', 'a/b/c'],
    ['v1.2', 'v1.2'],
    ['tenant.42/prod', 'tenant.42/prod'],
    // An alias as one segment of a longer prefix is a custom prefix, not the alias.
    ['production/eu', 'production/eu'],
    ['eu/live', 'eu/live'],
  ])('keeps custom prefix %j as %j', (raw, expected) => {
    expect(normalizeKeyPrefix(raw)).toBe(expected);
  });

  it.each(BAD_VALUES)('rejects %j', (raw) => {
    expect(() => normalizeKeyPrefix(raw)).toThrow(InvalidKeyPrefixError);
  });

  it.each(BLANK_VALUES)('rejects blank %j when asked to normalize it directly', (raw) => {
    expect(() => normalizeKeyPrefix(raw)).toThrow(InvalidKeyPrefixError);
  });

  it('puts the offending value in the error message', () => {
    expect(() => normalizeKeyPrefix('my env')).toThrow(/"my env"/);
  });

  it('never returns a prefix with a leading or trailing slash, or an empty or dot segment', () => {
    for (const raw of ['/x/', '//x/y//', ' /x/y/ ', 'X/Y', '/ x.y/z /']) {
      const prefix = normalizeKeyPrefix(raw);
      expect(prefix).not.toMatch(/^\/|\/$/);
      for (const segment of prefix.split('/')) {
        expect(segment).not.toBe('');
        expect(segment).not.toMatch(/^\.+$/);
      }
    }
  });
});

describe('resolveKeyPrefix', () => {
  it('consults exactly S3_KEY_PREFIX, APP_ENV, ENV, FLASK_ENV, NODE_ENV in that order', () => {
    expect([...PREFIX_SOURCES]).toEqual(['S3_KEY_PREFIX', 'APP_ENV', 'ENV', 'FLASK_ENV', 'NODE_ENV']);
  });

  it('defaults to dev when nothing is set', () => {
    expect(DEFAULT_KEY_PREFIX).toBe('dev');
    expect(resolveKeyPrefix({})).toEqual({ prefix: 'dev', source: 'default' });
  });

  it('ignores unrelated variables', () => {
    expect(
      resolveKeyPrefix({
        PREFIX: 'prod',
        S3_PREFIX: 'prod',
        KEY_PREFIX: 'prod',
        APP_ENVIRONMENT: 'prod',
        node_env: 'prod',
      }),
    ).toEqual({
      prefix: 'dev',
      source: 'default',
    });
  });

  it.each(BLANK_VALUES)('defaults to dev when every variable is blank (%j)', (blank) => {
    const env = Object.fromEntries(PREFIX_SOURCES.map((name) => [name, blank]));
    expect(resolveKeyPrefix(env)).toEqual({ prefix: 'dev', source: 'default' });
  });

  // Each variable beats every one after it, whatever the later ones say.
  const precedence = PREFIX_SOURCES.flatMap((winner, index) =>
    PREFIX_SOURCES.slice(index + 1).map((loser) => ({ winner, loser })),
  );
  it.each(precedence)('$winner beats $loser', ({ winner, loser }) => {
    expect(resolveKeyPrefix(envWith({ [winner]: 'winner-value', [loser]: 'loser-value' }))).toEqual({
      prefix: 'winner-value',
      source: winner,
    });
    // Also when the loser holds an alias and the winner a custom value, and the other way around.
    expect(resolveKeyPrefix(envWith({ [winner]: 'Live', [loser]: 'team-b' }))).toEqual({
      prefix: 'prod',
      source: winner,
    });
    expect(resolveKeyPrefix(envWith({ [winner]: 'team-b', [loser]: 'Live' }))).toEqual({
      prefix: 'team-b',
      source: winner,
    });
  });

  it.each(PREFIX_SOURCES.map((source, index) => ({ source, index })))(
    '$source wins when set with every later variable set too',
    ({ source, index }) => {
      const env = Object.fromEntries(
        PREFIX_SOURCES.slice(index).map((name) => [name, `${name.toLowerCase().replace(/_/g, '-')}-value`]),
      );
      expect(resolveKeyPrefix(env)).toEqual({ prefix: `${source.toLowerCase().replace(/_/g, '-')}-value`, source });
    },
  );

  // Blank values in stronger variables are skipped, not taken as "empty prefix" and not as errors.
  const blankFallThrough = PREFIX_SOURCES.flatMap((source, index) =>
    BLANK_VALUES.map((blank) => ({ source, index, blank, shown: JSON.stringify(blank) })),
  );
  it.each(blankFallThrough)('skips blank $shown in every variable before $source', ({ source, index, blank }) => {
    const env: Record<string, string> = {};
    for (const earlier of PREFIX_SOURCES.slice(0, index)) env[earlier] = blank;
    env[source] = ' Staging ';
    for (const later of PREFIX_SOURCES.slice(index + 1)) env[later] = 'later-value';
    expect(resolveKeyPrefix(env)).toEqual({ prefix: 'staging', source });
  });

  it.each(PREFIX_SOURCES)('normalizes aliases read from %s', (source) => {
    for (const [alias, canonical] of ALIASES) {
      expect(resolveKeyPrefix({ [source]: ` /${alias.toUpperCase()}/ ` })).toEqual({ prefix: canonical, source });
    }
  });

  it.each(PREFIX_SOURCES)('keeps a lower-cased multi-segment custom prefix from %s', (source) => {
    expect(resolveKeyPrefix({ [source]: '/Team-A/Notes/' })).toEqual({ prefix: 'team-a/notes', source });
  });

  it('treats NODE_ENV=test as its own prefix rather than dev', () => {
    expect(resolveKeyPrefix({ NODE_ENV: 'test' })).toEqual({ prefix: 'test', source: 'NODE_ENV' });
  });

  const badBySource = PREFIX_SOURCES.flatMap((source) =>
    BAD_VALUES.map((bad) => ({ source, bad, shown: JSON.stringify(bad) })),
  );
  it.each(badBySource)('rejects bad $source=$shown instead of falling through', ({ source, bad }) => {
    const env: Record<string, string> = { [source]: bad };
    for (const later of PREFIX_SOURCES.slice(PREFIX_SOURCES.indexOf(source) + 1)) env[later] = 'prod';
    let caught: unknown;
    try {
      resolveKeyPrefix(env);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidKeyPrefixError);
    // The error knows which variable held the bad value, so the config error can name it.
    expect((caught as InvalidKeyPrefixError).source).toBe(source);
  });

  it('blames the variable that was used, not a stronger one holding only slashes', () => {
    let caught: unknown;
    try {
      resolveKeyPrefix({ S3_KEY_PREFIX: ' / ', APP_ENV: '//', ENV: 'a//b' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidKeyPrefixError);
    expect((caught as InvalidKeyPrefixError).source).toBe('ENV');
  });

  it('does not look at a bad value in a weaker variable once a stronger one is set', () => {
    expect(resolveKeyPrefix({ S3_KEY_PREFIX: 'prod', NODE_ENV: 'a b/../c' })).toEqual({
      prefix: 'prod',
      source: 'S3_KEY_PREFIX',
    });
  });
});
