import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_STATUS, ErrorCode } from './app-error';
import type { ErrorResponseDto } from './error-response.dto';

/** Fastify's own body-parsing errors, which reach us before any controller runs. */
const FASTIFY_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
};

const CODE_BY_HTTP_STATUS: Readonly<Record<number, ErrorCode>> = {
  401: 'UNAUTHENTICATED',
  400: 'VALIDATION_FAILED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'RATE_LIMITED',
};

/**
 * Turns every error into the one JSON shape of the API. Known errors keep their status and message;
 * anything unexpected becomes a plain 500 with the request id, and its stack goes to the log only.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    // (Not `request.raw.destroyed`: a request whose body was read to the end is destroyed too. And a reset
    // counts only while the request's own body was still arriving: a database or store connection reset
    // by its server says ECONNRESET too, and that client is still there, owed a 500.)
    const clientLeft =
      request.raw.socket?.destroyed === true ||
      ((exception as NodeJS.ErrnoException | null)?.code === 'ECONNRESET' && !request.raw.complete);
    if (clientLeft && !reply.raw.headersSent) {
      // The client went away (or was cut off by a timeout) before its request arrived: nobody to answer.
      this.logger.warn(`${request.method} ${pathOf(request)}: the client left: ${describe(exception)}`);
      reply.raw.destroy();
      return;
    }
    const body = this.toBody(exception, request);
    // Every error names its request, so a user's report leads straight to the log lines.
    body.error.request_id = String(request.id);

    if (reply.sent || reply.raw.headersSent) {
      // A stream failed after its headers went out: the status cannot change any more, so cut the connection.
      this.logger.warn(
        `${request.method} ${pathOf(request)} failed after the response started: ${describe(exception)}`,
      );
      reply.raw.destroy();
      return;
    }
    if (exception instanceof AppError) void reply.headers(exception.headers);
    void reply.status(body.status).header('content-type', 'application/json; charset=utf-8').send(body);
  }

  private toBody(exception: unknown, request: FastifyRequest): ErrorResponseDto {
    if (exception instanceof AppError) {
      const body = errorBody(exception.code, exception.message, exception.details);
      Object.assign(body.error, exception.info);
      return body;
    }
    // The Fastify adapter wraps Fastify's own 4xx errors in an HttpException; their code says more.
    const fastifyCode = (
      (exception instanceof HttpException ? exception.cause : exception) as { code?: unknown } | null
    )?.code;
    if (typeof fastifyCode === 'string' && FASTIFY_ERROR_CODES[fastifyCode]) {
      return errorBody(FASTIFY_ERROR_CODES[fastifyCode], (exception as Error).message);
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = CODE_BY_HTTP_STATUS[status];
      if (code) {
        const message = status === 404 ? `No route for ${request.method} ${pathOf(request)}` : exception.message;
        return errorBody(code, message);
      }
    }

    // The query string stays out of the log: signed URLs carry their signature there.
    this.logger.error(`${request.method} ${pathOf(request)}: ${describe(exception)}`, (exception as Error)?.stack);
    return errorBody('INTERNAL_ERROR', 'Something went wrong on our side. Quote the request id if you report it.');
  }
}

export function errorBody(
  code: ErrorCode,
  message: string,
  details?: readonly { field: string; message: string }[],
  requestId?: string,
): ErrorResponseDto {
  return {
    status: ERROR_STATUS[code],
    error: {
      code,
      message,
      ...(details ? { details: [...details] } : {}),
      ...(requestId === undefined ? {} : { request_id: requestId }),
    },
  };
}

function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0];
}

function describe(exception: unknown): string {
  return exception instanceof Error ? `${exception.name}: ${exception.message}` : String(exception);
}
