import type { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger, type Params } from 'nestjs-pino';
import pino, { type DestinationStream } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { AuthenticatedRequest } from '../auth/auth.decorators';
import type { LogFormat, LogLevelName } from '../config/app-config';
import { redactSecrets } from './log-redaction';

export interface LoggingOptions {
  format: LogFormat | undefined;
  level: LogLevelName;
  /** Replaces stdout (tests capture the lines); every line is still redacted on its way there. */
  destination?: DestinationStream;
}

/**
 * nestjs-pino's settings: JSON lines (pretty ones in a terminal) through one root logger, which Nest's
 * own logger and `PinoLogger` write to. The per-request part (`request_id` on every line logged during a
 * request, one access line when it is answered) is done by two Fastify hooks (`runInRequestLogContext`,
 * `logAccess`) rather than by pino-http's middleware, which cost about 60 µs of CPU per request for the
 * same lines (docs/PERFORMANCE.md).
 */
export function loggerParams(options: LoggingOptions): Params {
  return {
    forRoutes: [],
    pinoHttp: [
      {
        level: options.level,
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
        wrapSerializers: false,
        serializers: { err: pino.stdSerializers.err },
      },
      logDestination(options),
    ],
  };
}

/** From an `onRequest` hook: the rest of the request runs in a logging context whose lines carry its id. */
export function runInRequestLogContext(logContext: PinoLogger, request: FastifyRequest, done: () => void): void {
  logContext.runInContext(done, { bindings: { request_id: request.id } });
}

/**
 * From an `onRequest` hook: one access line per request, written when its response closes. That is after
 * it finished, or when the connection went before it could (the client left mid-answer, a timeout cut
 * the socket, a stream broke after the headers), which Fastify's `onResponse` never hears of. Every
 * request that reaches the hooks gets its line (a scanner's `GET /` and 404s included; a URL Fastify
 * cannot decode is answered before any hook runs). Method, route template, path (never the query string,
 * where signed URLs keep their signature), status, time and user. The error itself, if any, was logged
 * by the exception filter with its stack.
 */
export function logAccessWhenClosed(request: FastifyRequest, reply: FastifyReply): void {
  reply.raw.once('close', () => logAccess(request, reply));
}

function logAccess(request: FastifyRequest, reply: FastifyReply): void {
  const status = reply.statusCode;
  const url = request.raw.url ?? '';
  const query = url.indexOf('?');
  PinoLogger.root?.[status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info'](
    {
      request_id: request.id,
      method: request.method,
      route: request.routeOptions.url ?? null,
      path: query === -1 ? url : url.slice(0, query),
      status,
      response_time_ms: Math.round(reply.elapsedTime),
      user_id: (request as AuthenticatedRequest).user?.id ?? null,
      // The client went away, or the connection was cut, before the whole answer was sent.
      ...(reply.raw.writableFinished ? {} : { aborted: true }),
    },
    status >= 500 ? 'request failed' : 'request completed',
  );
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
