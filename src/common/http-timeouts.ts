import type { FastifyInstance } from 'fastify';
import type { AppConfig } from '../config/app-config';

/**
 * The server-wide timeouts, as Fastify options. Node's own request deadline applies to every request,
 * uploads included, so it is the upload ceiling; API requests get the shorter one from a hook (below).
 * Node checks the header and request deadlines every `connectionsCheckingInterval`, so that runs at
 * least once a second instead of every 30 s.
 */
export function httpTimeoutOptions(http: AppConfig['http']) {
  return {
    connectionTimeout: http.idleTimeoutMs,
    keepAliveTimeout: http.keepAliveTimeoutMs,
    requestTimeout: http.uploadTimeoutMs,
    http: {
      headersTimeout: Math.min(http.headersTimeoutMs, http.uploadTimeoutMs),
      connectionsCheckingInterval: Math.min(1_000, http.headersTimeoutMs),
    },
  };
}

/**
 * An API request (anything but an upload to the local store) must have arrived, body included, within
 * `requestTimeoutMs`: a client trickling a byte now and then never trips the idle timeout, so without
 * this it could hold its socket for as long as it likes. Past the deadline the connection is dropped.
 */
export function limitApiRequestTime(fastify: FastifyInstance, http: AppConfig['http'], uploadPrefix: string): void {
  fastify.addHook('onRequest', (request, _reply, done) => {
    const raw = request.raw;
    const hasBody = raw.headers['transfer-encoding'] !== undefined || (raw.headers['content-length'] ?? '0') !== '0';
    if (!hasBody || raw.complete || (request.method === 'PUT' && request.url.startsWith(uploadPrefix))) return done();
    const timer = setTimeout(() => {
      if (!raw.complete) raw.socket?.destroy();
    }, http.requestTimeoutMs);
    timer.unref();
    const clear = () => clearTimeout(timer);
    raw.once('end', clear);
    raw.once('close', clear);
    done();
  });
}
