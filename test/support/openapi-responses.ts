import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/**
 * Every answer of the API checked against the committed openapi.json, the contract mobile teams generate
 * Swift and Kotlin clients from: the status must be documented for the operation, the content type among
 * the documented ones, and the body valid against the documented schema (required and nullable fields,
 * enums, formats). A response the spec does not describe is a crash in a generated client, so it fails
 * the test that received it. (What Stoplight's Prism does as a proxy, here in process, with Ajv.)
 *
 * Not checked: the signed storage URLs (`/api/storage/…`, outside the spec like S3's own URLs), the
 * explorer and the spec themselves (`/api/docs…`), CORS preflights, and anything not under `/api/`. A path no operation
 * matches may answer an error (that is what an unknown route does), never a success.
 */

const SPEC_FILE = join(__dirname, '..', '..', 'openapi.json');
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  /** Literal segments first: `/api/health/ready` before a `/api/health/{id}`. */
  params: number;
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

export class ResponseContractError extends Error {
  override name = 'ResponseContractError';
}

class OpenApiResponses {
  private readonly ajv: Ajv;
  private readonly operations: Operation[];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly spec: any) {
    // strict: false for OpenAPI's own keywords (example, nullable is Ajv's own) beside JSON Schema's.
    this.ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema(nullableReferences(spec), 'openapi.json');
    this.operations = Object.entries<any>(spec.paths)
      .flatMap(([template, item]) =>
        METHODS.filter((method) => item[method]).map((method) => ({
          method: method.toUpperCase(),
          template,
          pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
          params: (template.match(/\{/g) ?? []).length,
          responses: item[method].responses ?? {},
        })),
      )
      .sort((a, b) => a.params - b.params);
  }

  /** Throws a ResponseContractError naming what of the answer the spec does not describe. */
  check(method: string, url: string, status: number, contentType: string | null, text: string): void {
    const path = new URL(url).pathname;
    if (!path.startsWith('/api/') || path.startsWith('/api/storage/') || path.startsWith('/api/docs')) return;
    // A CORS preflight is the CORS layer's answer, not an operation's; a HEAD is its GET without the body.
    if (method === 'OPTIONS') return;
    const head = method === 'HEAD';
    if (head) method = 'GET';
    const call = `${head ? 'HEAD' : method} ${path} → ${status}`;
    const operation = this.operations.find((candidate) => candidate.method === method && candidate.pattern.test(path));
    if (!operation) {
      if (status >= 200 && status < 300)
        throw new ResponseContractError(`${call}: no operation in openapi.json answers it`);
      return;
    }
    const statusKey = [String(status), `${String(status)[0]}XX`, 'default'].find((key) => key in operation.responses);
    const documented = statusKey === undefined ? undefined : operation.responses[statusKey];
    const where = `${call} (${operation.method} ${operation.template} in openapi.json)`;
    if (!documented || statusKey === undefined) {
      throw new ResponseContractError(
        `${where}: status ${status} is not documented (documented: ${Object.keys(operation.responses).join(', ')}); body: ${text.slice(0, 300)}`,
      );
    }
    if (head) return;
    const mediaType = (contentType ?? '').split(';')[0].trim().toLowerCase();
    if (!documented.content) {
      if (text !== '')
        throw new ResponseContractError(
          `${where}: documented without a body, answered ${mediaType}: ${text.slice(0, 300)}`,
        );
      return;
    }
    const entry = Object.keys(documented.content).find((key) => key === mediaType || key === '*/*');
    if (!entry) {
      throw new ResponseContractError(
        `${where}: content type ${mediaType || '(none)'} is not documented (documented: ${Object.keys(documented.content).join(', ')})`,
      );
    }
    if (!documented.content[entry].schema || !mediaType.endsWith('json')) return;
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ResponseContractError(`${where}: the ${mediaType} body is not JSON: ${text.slice(0, 300)}`);
    }
    const validate = this.validator(operation, statusKey, entry);
    if (!validate(body)) {
      const errors = (validate.errors ?? []).map((error) => `${error.instancePath || '(body)'} ${error.message}`);
      throw new ResponseContractError(
        `${where}: the body does not match its schema: ${[...new Set(errors)].join('; ')}; body: ${text.slice(0, 500)}`,
      );
    }
  }

  /** Ajv's validator of one documented body, compiled on first use (a $ref into the whole spec). */
  private validator(operation: Operation, statusKey: string, mediaType: string): ValidateFunction {
    const pointer = [
      'paths',
      operation.template,
      operation.method.toLowerCase(),
      'responses',
      statusKey,
      'content',
      mediaType,
      'schema',
    ]
      .map((segment) => segment.replace(/~/g, '~0').replace(/\//g, '~1'))
      .join('/');
    const ref = `openapi.json#/${encodeURI(pointer).replace(/#/g, '%23')}`;
    let validate = this.validators.get(ref);
    if (!validate) {
      validate = this.ajv.compile({ $ref: ref });
      this.validators.set(ref, validate);
    }
    return validate;
  }
}

let loaded: OpenApiResponses | undefined;

/** The committed openapi.json's response rules, read once per test file. */
export function openApiResponses(): OpenApiResponses {
  loaded ??= new OpenApiResponses(JSON.parse(readFileSync(SPEC_FILE, 'utf8')));
  return loaded;
}

/**
 * A fetch that checks every answer against openapi.json before handing it back (the body stays
 * readable): the typed client and the phone's own calls go through it unless a test opts out.
 */
export function validatingFetch(inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const response = await inner(request.clone());
    const text = await response.clone().text();
    openApiResponses().check(request.method, request.url, response.status, response.headers.get('content-type'), text);
    return response;
  };
}

/**
 * OpenAPI 3.0 writes a nullable object of a named schema as `nullable: true` beside `allOf: [{$ref}]`
 * (what @nestjs/swagger emits, and what Swift and Kotlin generators read as an optional of that type).
 * Ajv's `nullable` only widens the `type` beside it, so the `allOf` would still refuse null: such a schema
 * is checked as null, or the schema without `nullable`.
 */
function nullableReferences(node: any): any {
  if (Array.isArray(node)) return node.map(nullableReferences);
  if (node === null || typeof node !== 'object') return node;
  const copy = Object.fromEntries(Object.entries(node).map(([key, value]) => [key, nullableReferences(value)]));
  if (copy.nullable !== true || !(copy.allOf || copy.$ref || copy.oneOf || copy.anyOf)) return copy;
  const { nullable: _nullable, ...rest } = copy;
  return { anyOf: [{ type: 'null' }, rest] };
}
