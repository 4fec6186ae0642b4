import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';

/**
 * The response headers helmet sets for these options, worked out once. They depend on nothing in the
 * request (no CSP nonces here), so there is no need to run helmet's middleware chain on every request,
 * as `@fastify/helmet` does: it rebuilds the chain and re-parses the CSP directives each time, a
 * noticeable share of a playback request (docs/PERFORMANCE.md).
 */
export function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const csp = options.contentSecurityPolicy;
  const directives = typeof csp === 'object' ? Object.values(csp.directives ?? {}) : [];
  if (
    directives.some(
      (value) =>
        typeof value === 'function' || (Array.isArray(value) && value.some((item) => typeof item === 'function')),
    )
  ) {
    // A function-valued directive (a nonce, say) is worked out per request: computing it once would freeze it.
    throw new Error('helmetHeaders: CSP directives computed per request cannot be sent as fixed headers');
  }
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let failure: unknown;
  let finished = false;
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    failure = error;
    finished = true;
  });
  // helmet's middleware is synchronous; if it ever stops being so, refuse to start rather than send nothing.
  if (!finished || failure)
    throw new Error(
      `helmet did not produce its headers synchronously${failure ? `: ${failure instanceof Error ? failure.message : JSON.stringify(failure)}` : ''}`,
    );
  return headers;
}

/** Every response, errors and 404s included, carries the headers from the first hook that runs. */
export function sendSecurityHeaders(fastify: FastifyInstance, options: HelmetOptions): void {
  const headers = helmetHeaders(options);
  fastify.addHook('onRequest', (_request, reply, done) => {
    void reply.headers(headers);
    done();
  });
}

/**
 * JSON answers are about one signed-in user (or say why not): no shared or browser cache may keep them.
 * Every answer names its request id, which a 500's body quotes too. Stored audio sets its own caching.
 */
export function sendNoStoreAndRequestId(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (request, reply, payload, done) => {
    void reply.header('x-request-id', String(request.id));
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('application/json') && !reply.hasHeader('cache-control'))
      void reply.header('cache-control', 'no-store');
    done(null, payload);
  });
}
