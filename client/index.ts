/**
 * A typed client of the Advanced Notes API: `openapi-fetch` over the types that `openapi-typescript`
 * generates from the committed `openapi.json` (`npm run client:generate` writes `schema.d.ts`).
 * Paths, parameters, bodies and answers are checked by the compiler against the spec, so a change to
 * the API that this client (or a test written on it) does not follow fails the type check.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema';

export type { components, operations, paths } from './schema';
export type Schemas = components['schemas'];
export type Note = Schemas['NoteResponseDto'];
export type AudioClip = Schemas['AudioClipResponseDto'];
export type PresignedUpload = Schemas['PresignedUploadDto'];
export type Playback = Schemas['PlaybackDto'];
export type ErrorResponse = Schemas['ErrorResponseDto'];

export type AdvancedNotesClient = Client<paths>;

export interface AdvancedNotesClientOptions {
  /** Where the API runs, without the `/api` the paths already carry: `http://localhost:3000`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` on every call when given. */
  token?: string;
  /** Another fetch (a test's, a proxy's). */
  fetch?: typeof globalThis.fetch;
}

export function createAdvancedNotesClient(options: AdvancedNotesClientOptions): AdvancedNotesClient {
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    headers: options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}

/** An error answer of the API: its status, and the code and message of its one error shape. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Builds the error from any answer: the API's error shape when it is one, else the bare status. */
  static from(response: Response, body: unknown): ApiError {
    const error = (body as Partial<ErrorResponse> | undefined)?.error;
    if (error && typeof error.code === 'string') {
      // A validation error's message is generic; its details say which field and why.
      const details = (error.details ?? []).map((detail) => detail.message).join('; ');
      return new ApiError(response.status, error.code, [error.message, details].filter(Boolean).join(' '), body);
    }
    const text = typeof body === 'string' && body !== '' ? `: ${body.slice(0, 200)}` : '';
    return new ApiError(response.status, `HTTP_${response.status}`, `${response.statusText}${text}`, body);
  }
}

/** The data of a successful call, or its answer as an `ApiError`. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.response.ok) return result.data as T;
  throw ApiError.from(result.response, result.error);
}
