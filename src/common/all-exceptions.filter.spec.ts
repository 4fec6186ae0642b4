import type { ArgumentsHost } from '@nestjs/common';
import { Logger } from '@nestjs/common';
import { AllExceptionsFilter } from './all-exceptions.filter';

/**
 * Who left: the client, or a server behind the app. A connection reset reaches the filter with the same
 * code either way; only the request itself tells them apart.
 */
describe('AllExceptionsFilter and connection resets', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['error', 'warn', 'log']));

  function handle(exception: unknown, request: { complete: boolean; socketDestroyed: boolean }) {
    const sent: { status?: number; body?: unknown } = {};
    let destroyed = false;
    const reply = {
      sent: false,
      raw: { headersSent: false, destroy: () => (destroyed = true) },
      headers: () => reply,
      status: (status: number) => ((sent.status = status), reply),
      header: () => reply,
      send: (body: unknown) => ((sent.body = body), reply),
    };
    const fastifyRequest = {
      id: 'req-1',
      method: 'GET',
      url: '/api/notes',
      raw: { complete: request.complete, socket: { destroyed: request.socketDestroyed } },
    };
    const host = {
      switchToHttp: () => ({ getRequest: () => fastifyRequest, getResponse: () => reply }),
    } as unknown as ArgumentsHost;
    new AllExceptionsFilter().catch(exception, host);
    return { ...sent, destroyed };
  }

  const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });

  it('answers 500 when the database or the store reset its connection, the client still being there', () => {
    expect(handle(reset(), { complete: true, socketDestroyed: false })).toMatchObject({
      status: 500,
      destroyed: false,
      body: { error: { code: 'INTERNAL_ERROR', request_id: 'req-1' } },
    });
  });

  it('answers nobody when the client reset its connection while its body was arriving', () => {
    expect(handle(reset(), { complete: false, socketDestroyed: false })).toEqual({ destroyed: true });
  });

  it('answers nobody when the client is gone, whatever the error', () => {
    expect(handle(new Error('boom'), { complete: true, socketDestroyed: true })).toEqual({ destroyed: true });
  });
});
