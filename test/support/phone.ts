import { createAdvancedNotesClient, type AdvancedNotesClient } from '../../client/index';
import { validatingFetch } from './openapi-responses';

/** A minimal HTTP client playing the mobile app: JSON in, JSON out, status and headers kept. */
export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface PhoneOptions {
  /**
   * Check every API answer against openapi.json (test/support/openapi-responses.ts), failing the call
   * that got one the spec does not describe. On by default; `false` for the suites whose answers are
   * about timing rather than the contract (slow clients, drain, a frozen store).
   */
  validateResponses?: boolean;
}

/**
 * The phone: `api` is the typed client generated from the spec (what a mobile developer gets), signed
 * in with the token; `get`/`post`/`raw`… send what a typed client would refuse to, for the tests of
 * malformed requests. Every answer from the API is checked against openapi.json unless the phone was
 * made without (`validateResponses: false`) or the call goes through `unvalidated()`.
 */
export class Phone {
  readonly api: AdvancedNotesClient;
  private readonly fetch: typeof fetch;

  constructor(
    private readonly baseUrl: string,
    /** Sent as `Authorization: Bearer …` on every request when given. */
    private readonly token?: string,
    private readonly options: PhoneOptions = {},
  ) {
    this.fetch = options.validateResponses === false ? fetch : validatingFetch();
    this.api = createAdvancedNotesClient({ baseUrl, token, fetch: this.fetch });
  }

  /** The same phone without the check against openapi.json, for one call that needs it off (say why). */
  unvalidated(): Phone {
    return new Phone(this.baseUrl, this.token, { ...this.options, validateResponses: false });
  }

  get<T = any>(path: string, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    return this.send<T>('GET', path, undefined, headers);
  }

  post<T = any>(path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    return this.send<T>('POST', path, body, headers);
  }

  patch<T = any>(path: string, body?: unknown): Promise<ApiResponse<T>> {
    return this.send<T>('PATCH', path, body);
  }

  delete<T = any>(path: string): Promise<ApiResponse<T>> {
    return this.send<T>('DELETE', path);
  }

  /** Sends a raw body with the given content type (or none), for malformed-request tests. */
  async raw<T = any>(
    method: string,
    path: string,
    body: string | undefined,
    headers: Record<string, string>,
  ): Promise<ApiResponse<T>> {
    const response = await this.fetch(this.baseUrl + path, {
      method,
      body,
      headers: { ...this.authorization(), ...headers },
    });
    return { status: response.status, headers: response.headers, body: await readBody(response) };
  }

  private authorization(): Record<string, string> {
    return this.token === undefined ? {} : { authorization: `Bearer ${this.token}` };
  }

  private async send<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const response = await this.fetch(this.baseUrl + path, {
      method,
      headers: {
        ...this.authorization(),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, body: await readBody(response) };
  }
}

/** PUTs bytes to a presigned URL the way a phone does: the given headers, the raw bytes. */
export async function putBytes(
  url: string,
  bytes: Uint8Array,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'PUT', headers, body: bytes });
  return { status: response.status, text: await response.text() };
}

export async function download(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const response = await fetch(url, { headers });
  return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
}

async function readBody(response: Response): Promise<any> {
  const text = await response.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
