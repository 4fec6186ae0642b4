import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { FastifyReply } from 'fastify';
import { PinoLogger, type Params } from 'nestjs-pino';
import pino, { type DestinationStream } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { AuthenticatedRequest } from '../auth/auth.decorators';
import type { LogFormat, LogLevelName } from '../config/app-config';
import { redactSecrets } from './log-redaction';
import { requestIdFor, REQUEST_ID_HEADER } from './request-id';

/** Where the Fastify request of a raw request is kept, so that its access line can name the route and the user. */
const FASTIFY_REQUEST = Symbol('fastifyRequest');
type RawRequest = IncomingMessage & { [FASTIFY_REQUEST]?: AuthenticatedRequest };

/** Called from an `onRequest` hook: pino-http only sees the raw request. */
export function linkFastifyRequest(request: FastifyRequest): void {
  (request.raw as RawRequest)[FASTIFY_REQUEST] = request;
}

/**
 * nestjs-pino's middleware runs for routes under the global prefix only; a request outside it (a
 * scanner's `GET /`, a malformed URL) still gets its access line, from the root logger.
 */
export function logAccessOutsideMiddleware(request: FastifyRequest, reply: FastifyReply): void {
  // pino-http keeps its loggers in `allLogs` (middie has already put Fastify's own `log` on the raw request).
  if ((request.raw as { allLogs?: unknown }).allLogs !== undefined) return;
  const level = reply.statusCode >= 500 ? 'error' : reply.statusCode >= 400 ? 'warn' : 'info';
  PinoLogger.root?.[level](
    {
      request_id: request.id,
      ...accessLine(request.raw, reply.raw, { response_time_ms: Math.round(reply.elapsedTime) }),
    },
    'request completed',
  );
}

export interface LoggingOptions {
  format: LogFormat | undefined;
  level: LogLevelName;
  /** Replaces stdout (tests capture the lines); every line is still redacted on its way there. */
  destination?: DestinationStream;
}

/**
 * nestjs-pino's settings: JSON lines (pretty ones in a terminal), `request_id` on every line logged
 * during a request, and one access line per request when its response is finished.
 */
export function loggerParams(options: LoggingOptions): Params {
  return {
    pinoHttp: [
      {
        level: options.level,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        // Every line of a request carries only its id; the access line says the rest.
        quietReqLogger: true,
        quietResLogger: true,
        // pino-http still binds the whole request to a child logger that no line here uses, serializing and
        // stringifying every header of every request: the request serializer drops it instead.
        wrapSerializers: false,
        serializers: { req: () => undefined, err: pino.stdSerializers.err },
        customAttributeKeys: { reqId: 'request_id', responseTime: 'response_time_ms' },
        // Fastify has already chosen the id (genReqId in app.factory.ts); this is for requests it did not see.
        genReqId: (req) => req.id ?? requestIdFor(req.headers[REQUEST_ID_HEADER]),
        customLogLevel: (_req, res, error) =>
          error !== undefined || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info',
        customSuccessMessage: () => 'request completed',
        customErrorMessage: () => 'request failed',
        customSuccessObject: (req, res, value: Record<string, unknown>) => accessLine(req, res, value),
        customErrorObject: (req, res, _error, value: Record<string, unknown>) => accessLine(req, res, value),
      },
      logDestination(options),
    ],
  };
}

/**
 * Method, route template, path (never the query string, where signed URLs keep their signature),
 * status, time and user. The error itself, if any, was logged by the exception filter with its stack.
 */
function accessLine(
  req: IncomingMessage,
  res: ServerResponse,
  value: Record<string, unknown>,
): Record<string, unknown> {
  const request = (req as RawRequest)[FASTIFY_REQUEST];
  const url = req.url ?? '';
  const query = url.indexOf('?');
  return {
    method: req.method,
    route: request?.routeOptions.url ?? null,
    path: query === -1 ? url : url.slice(0, query),
    status: res.statusCode,
    response_time_ms: value.response_time_ms,
    user_id: request?.user?.id ?? null,
    // The client went away before the whole answer was sent.
    ...(res.writableFinished ? {} : { aborted: true }),
  };
}

function logDestination(options: LoggingOptions): DestinationStream {
  const pretty = options.format === 'pretty' || (options.format === undefined && process.stdout.isTTY === true);
  const target: DestinationStream =
    options.destination ??
    (pretty
      ? prettyPrinter()({ colorize: process.stdout.isTTY === true, sync: true, singleLine: true })
      : pino.destination({ dest: 1, sync: true }));
  return { write: (line: string) => target.write(redactSecrets(line)) };
}

/** Loaded only for a terminal: it is a fifth of a second of start-up that servers do not need. */
function prettyPrinter(): typeof PinoPretty {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('pino-pretty') as { default: typeof PinoPretty }).default;
}

/** Nest's `logLevels` (kept for callers of createApp) as the least severe pino level they let through. */
export function pinoLevelOf(levels: readonly string[] | false): LogLevelName {
  if (levels === false || levels.length === 0) return 'silent';
  if (levels.includes('verbose')) return 'trace';
  if (levels.includes('debug')) return 'debug';
  if (levels.includes('log')) return 'info';
  if (levels.includes('warn')) return 'warn';
  if (levels.includes('error')) return 'error';
  return 'fatal';
}
