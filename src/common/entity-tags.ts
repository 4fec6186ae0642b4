import { AppError } from './app-error';

/**
 * Conditional requests on versioned resources (RFC 9110 §13): `If-Match` and `If-None-Match` hold `*` or
 * a list of entity tags. The API's tags are strong (`"<version>"`) and compared strongly: a weak tag
 * (`W/"3"`) never matches.
 */
export type EntityTagCondition = { any: true } | { any: false; tags: { weak: boolean; opaque: string }[] };

/** One entity tag: an optional `W/`, then a quoted string of visible ASCII but `"` (and obs-text). */
const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"/;

/** The header's condition, or undefined when it is absent; a malformed one is a 400 naming the header. */
export function parseEntityTagCondition(header: string | undefined, name: string): EntityTagCondition | undefined {
  if (header === undefined) return undefined;
  const value = header.trim();
  if (value === '*') return { any: true };
  const tags: { weak: boolean; opaque: string }[] = [];
  let rest = value;
  while (rest.length > 0 && rest.length <= 8192) {
    const match = ENTITY_TAG.exec(rest);
    if (!match) break;
    tags.push({ weak: match[1] !== undefined, opaque: match[2] });
    rest = rest.slice(match[0].length).replace(/^[ \t]*/, '');
    if (rest === '') return { any: false, tags };
    if (!rest.startsWith(',')) break;
    rest = rest.slice(1).replace(/^[ \t,]*/, '');
    if (rest === '') return { any: false, tags };
  }
  throw new AppError('VALIDATION_FAILED', 'The request is not valid.', {
    details: [
      { field: name, message: `${name} must be * or a list of entity tags such as "3" (from the ETag header)` },
    ],
  });
}

/** Whether a resource at `version` matches (strong comparison; `*` matches any existing resource). */
export function matchesVersion(condition: EntityTagCondition, version: number): boolean {
  if (condition.any) return true;
  return condition.tags.some((tag) => !tag.weak && tag.opaque === String(version));
}

export function entityTagOf(version: number): string {
  return `"${version}"`;
}
