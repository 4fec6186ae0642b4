import { LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppModule } from './app.module';
import { AppError } from './common/app-error';
import { AllExceptionsFilter, errorBody } from './common/all-exceptions.filter';
import { sendSecurityHeaders } from './common/security-headers';
import { createValidationPipe } from './common/validation';
import { loadAppConfig, type Env } from './config/app-config';
import { readEnvironment } from './config/app-config.module';
import { LOCAL_OBJECTS_ROUTE } from './storage/local-object-server';

export const API_PREFIX = 'api';
export const DOCS_PATH = 'api/docs';

export interface CreateAppOptions {
  /** Replaces the process environment (tests); without it the environment and `.env` are read. */
  env?: Env;
  logLevels?: LogLevel[] | false;
}

/**
 * Builds the whole application, configured exactly as `main.ts` serves it; the e2e tests use it too.
 * Throws `ConfigValidationError` before anything starts when a setting is wrong.
 */
export async function createApp(options: CreateAppOptions = {}): Promise<NestFastifyApplication> {
  const config = loadAppConfig(options.env ?? readEnvironment());
  const adapter = new FastifyAdapter({
    // Streamed downloads keep sockets alive; without this, shutting down waits for idle clients.
    forceCloseConnections: true,
    bodyLimit: 1024 * 1024,
    // Errors Fastify meets before any route runs get the API's error shape too.
    frameworkErrors: (error: Error, _request: FastifyRequest, reply: FastifyReply) => {
      void reply.status(400).send(errorBody('VALIDATION_FAILED', `The request URL is malformed: ${error.message}`));
    },
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return socket.destroy();
      const body = JSON.stringify(errorBody('VALIDATION_FAILED', 'The request is not valid HTTP.'));
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  });
  acceptRawUploadBodies(adapter);

  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    abortOnError: false,
    // Fastify's own JSON parser is all the API needs; Nest's would add form bodies, which it must refuse.
    bodyParser: false,
    logger: options.logLevels ?? ['log', 'warn', 'error'],
  });
  sendSecurityHeaders(adapter.getInstance(), {
    // The API explorer's page loads its own script and styles, and inline styles of swagger-ui.
    contentSecurityPolicy: { directives: { styleSrc: ["'self'", "'unsafe-inline'"], imgSrc: ["'self'", 'data:'] } },
  });
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: [...config.corsOrigins],
      allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key'],
      exposedHeaders: ['Retry-After', 'Idempotent-Replayed', 'WWW-Authenticate', 'ETag'],
      maxAge: 600,
    });
  }
  app.setGlobalPrefix(API_PREFIX);
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new AllExceptionsFilter());
  setUpOpenApi(app);
  return app;
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
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: 'A token from your identity provider, or `npm run token -- <user>` in development.',
    })
    .build();
  const document = SwaggerModule.createDocument(app, config, {
    operationIdFactory: (_controllerKey, methodKey) => methodKey,
  });
  SwaggerModule.setup(DOCS_PATH, app, document, { jsonDocumentUrl: `${DOCS_PATH}-json` });
}
