import type { IncomingMessage } from 'node:http';
import { Logger as NestLogger, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DestinationStream } from 'pino';
import { Logger, PinoLogger } from 'nestjs-pino';
import { AppModule } from './app.module';
import { AppError } from './common/app-error';
import { AllExceptionsFilter, errorBody } from './common/all-exceptions.filter';
import { sendNoStoreAndRequestId, sendSecurityHeaders } from './common/security-headers';
import { httpTimeoutOptions, limitApiRequestTime } from './common/http-timeouts';
import { createValidationPipe } from './common/validation';
import type { Env } from './config/app-config';
import { AppConfigModule } from './config/app-config.module';
import { LOCAL_OBJECTS_ROUTE } from './storage/local-object-server';
import { logAccessWhenClosed, pinoLevelOf, runInRequestLogContext } from './operations/logging';
import { Metrics } from './operations/metrics';
import { requestIdFor, REQUEST_ID_HEADER } from './operations/request-id';
import { ShutdownState } from './operations/shutdown-state';

export const API_PREFIX = 'api';
export const DOCS_PATH = 'api/docs';

export interface CreateAppOptions {
  /** Replaces the process environment (tests); without it the environment and `.env` are read. */
  env?: Env;
  /** Overrides LOG_LEVEL with the least severe of Nest's levels given. */
  logLevels?: LogLevel[] | false;
  /** Where the JSON log lines go instead of stdout (tests capture them); they are redacted all the same. */
  logDestination?: DestinationStream;
}

/**
 * Builds the whole application, configured exactly as `main.ts` serves it; the e2e tests use it too.
 * Throws `ConfigValidationError` before anything starts when a setting is wrong, and `StartupError`
 * when the database or the bucket cannot be reached.
 */
export async function createApp(options: CreateAppOptions = {}): Promise<NestFastifyApplication> {
  const appConfig = await AppConfigModule.forRoot({ env: options.env });
  const { config } = appConfig;
  const adapter = new FastifyAdapter({
    // Streamed downloads keep sockets alive; without this, app.close() waits for idle clients. A
    // signal drains requests in flight before it closes the app (operations/graceful-shutdown.ts).
    forceCloseConnections: true,
    bodyLimit: 1024 * 1024,
    ...httpTimeoutOptions(config.http),
    // The caller's X-Request-Id when it is sane, else a new UUID (pino-http reuses it).
    genReqId: (request: IncomingMessage) => requestIdFor(request.headers[REQUEST_ID_HEADER]),
    // Errors Fastify meets before any route runs get the API's error shape too.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => {
      void reply
        .status(400)
        .header(REQUEST_ID_HEADER, request.id)
        .send(errorBody('VALIDATION_FAILED', `The request URL is malformed: ${error.message}`, undefined, request.id));
    },
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      if (!socket.writable) return socket.destroy();
      // Node's header deadline (HTTP_HEADERS_TIMEOUT_SECONDS) passed before the headers were complete.
      const timedOut = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const requestId = requestIdFor(undefined);
      const body = JSON.stringify(
        timedOut
          ? errorBody('REQUEST_TIMEOUT', 'The request took too long to arrive.', undefined, requestId)
          : errorBody('VALIDATION_FAILED', 'The request is not valid HTTP.', undefined, requestId),
      );
      socket.end(
        `HTTP/1.1 ${timedOut ? '408 Request Timeout' : '400 Bad Request'}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  });
  acceptRawUploadBodies(adapter);
  limitApiRequestTime(adapter.getInstance(), config.http, `${LOCAL_OBJECTS_ROUTE}/`);

  const logging = {
    destination: options.logDestination,
    ...(options.logLevels === undefined ? {} : { level: pinoLevelOf(options.logLevels) }),
  };
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(appConfig, logging), adapter, {
    abortOnError: false,
    // Fastify's own JSON parser is all the API needs; Nest's would add form bodies, which it must refuse.
    bodyParser: false,
    // Held back until the app is built and its JSON logger is in place: a start that fails is told by
    // the caller in one line (main.ts), not by Nest's start-up chatter and a stack trace.
    bufferLogs: true,
    autoFlushLogs: false,
  }).catch((error: unknown) => {
    discardBufferedLogs();
    throw error;
  });
  app.useLogger(app.get(Logger));
  app.flushLogs();
  observeRequests(app, await app.resolve(PinoLogger));
  sendSecurityHeaders(adapter.getInstance(), {
    // The API explorer's page loads its own script and styles, and inline styles of swagger-ui.
    contentSecurityPolicy: { directives: { styleSrc: ["'self'", "'unsafe-inline'"], imgSrc: ["'self'", 'data:'] } },
  });
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: [...config.corsOrigins],
      // PATCH and DELETE for notes and clips, PUT for uploads to the local store's signed URLs.
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE', 'PUT'],
      allowedHeaders: [
        'Authorization',
        'Content-Type',
        'Idempotency-Key',
        'Content-MD5',
        'Range',
        'X-Request-Id',
        // Conditional requests on notes (docs/sync.md).
        'If-Match',
        'If-None-Match',
        // DELETE /api/me's confirmation.
        'Confirm-Delete',
      ],
      exposedHeaders: [
        'Retry-After',
        'Idempotent-Replayed',
        'WWW-Authenticate',
        'X-Request-Id',
        'Content-Range',
        'ETag',
      ],
      maxAge: 600,
    });
  }
  sendNoStoreAndRequestId(adapter.getInstance());
  app.setGlobalPrefix(API_PREFIX);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());
  setUpOpenApi(app);
  return app;
}

/** A start that failed is told in one line by its caller, not by Nest's buffered chatter and a stack trace. */
export function discardBufferedLogs(): void {
  NestLogger.overrideLogger(false);
  NestLogger.flush();
}

/**
 * Per request: the X-Request-Id answer header, its logging context and access line, the request-duration
 * histogram (route template, never the raw path, so ids do not multiply the series), and
 * `Connection: close` while draining so that keep-alive clients let go.
 */
function observeRequests(app: NestFastifyApplication, logContext: PinoLogger): void {
  const fastify = app.getHttpAdapter().getInstance();
  const metrics = app.get(Metrics);
  const shutdown = app.get(ShutdownState);
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    logAccessWhenClosed(request, reply);
    runInRequestLogContext(logContext, request, done);
  });
  fastify.addHook('onSend', (_request, reply, payload, done) => {
    if (shutdown.draining) void reply.header('connection', 'close');
    done(null, payload);
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequestDuration
      .labels(request.method, request.routeOptions.url ?? 'unmatched', String(reply.statusCode))
      .observe(reply.elapsedTime / 1000);
    done();
  });
}

/**
 * Uploads to the local driver's signed URLs arrive as raw audio bytes: hand that route the request
 * stream untouched (never buffered), and refuse unknown body types everywhere else.
 */
function acceptRawUploadBodies(adapter: FastifyAdapter): void {
  const uploadPrefix = `${LOCAL_OBJECTS_ROUTE}/`;
  const fastify = adapter.getInstance();
  // The API speaks JSON only; a text/plain body must be refused, not handed to the validators as a string.
  fastify.removeContentTypeParser('text/plain');
  fastify.addContentTypeParser('*', (request, payload, done) => {
    if (request.method === 'PUT' && request.url.startsWith(uploadPrefix)) return done(null, payload);
    done(
      new AppError(
        'UNSUPPORTED_MEDIA_TYPE',
        `Send JSON with Content-Type: application/json (got ${request.headers['content-type'] ?? 'none'}).`,
      ),
      undefined,
    );
  });
}

function setUpOpenApi(app: NestFastifyApplication): void {
  const config = new DocumentBuilder()
    .setTitle('Advanced Notes API')
    .setDescription(
      'Notes with voice recordings. Audio bytes go straight between the phone and storage through presigned URLs: ' +
        'create a clip, PUT the bytes to `upload.url`, complete it, then ask for a playback URL. ' +
        'Every request except health needs `Authorization: Bearer <token>` (click Authorize). ' +
        'Every error answers `{ status, error: { code, message, details? } }`.',
    )
    .setVersion('1.0')
    // Relative: the explorer and generated clients call the server the document came from.
    .addServer('/', 'The server that serves this document')
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: 'A token from your identity provider, or `npm run token -- <user>` in development.',
    })
    .build();
  // Proprietary, as package.json says: a name and no URL (DocumentBuilder's setLicense wants one).
  config.info.license = { name: 'UNLICENSED' };
  const document = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (_controllerKey, methodKey) => methodKey,
  });
  SwaggerModule.setup(DOCS_PATH, app, document, { jsonDocumentUrl: `${DOCS_PATH}-json` });
}
