import type { Server } from 'node:http';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ShutdownState } from './shutdown-state';

const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'];
/** After the grace period, what is left (cutting connections, closing the database) gets this long before a hard exit. */
const CLOSE_BACKSTOP_MS = 10_000;
const CUT_HANDLERS_SETTLE_MS = 500;

/**
 * SIGTERM and SIGINT start one drain: readiness fails at once, the server stops accepting
 * connections, requests in flight run to completion (at most `graceSeconds`, then their
 * connections are cut), the app closes (janitor, database), and the process exits 0. A process
 * manager often signals the whole process group, so a second signal during the drain is only noted.
 */
export function exitGracefullyOnSignals(app: NestFastifyApplication, graceSeconds: number): void {
  const logger = new Logger('Shutdown');
  let draining = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      logger.warn(`${signal} received again; the drain already under way goes on`);
      return;
    }
    draining = true;
    logger.log(`${signal} received: draining, up to ${graceSeconds} s for requests in flight`);
    setTimeout(
      () => {
        logger.error('The drain did not finish in time; exiting now');
        process.exit(1);
      },
      graceSeconds * 1000 + CLOSE_BACKSTOP_MS,
    ).unref();
    drain(app, graceSeconds, logger).then(
      () => {
        logger.log('Drained and closed; exiting');
        process.exit(0);
      },
      (error: unknown) => {
        logger.error(`The drain failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        process.exit(1);
      },
    );
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

export async function drain(app: NestFastifyApplication, graceSeconds: number, logger: Logger): Promise<void> {
  const started = Date.now();
  app.get(ShutdownState).beginDrain();

  // No new connections; idle keep-alive ones go now, busy ones once their response is out
  // (responses carry `Connection: close` while draining, see app.factory.ts).
  const server = app.getHttpServer() as Server;
  const allClosed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const reaper = setInterval(() => server.closeIdleConnections(), 200);
  let timer: NodeJS.Timeout | undefined;
  const inTime = await Promise.race([
    allClosed.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceSeconds * 1000))),
  ]);
  clearInterval(reaper);
  clearTimeout(timer);
  if (!inTime) {
    const open = await new Promise<number>((resolve) => server.getConnections((_error, count) => resolve(count)));
    logger.warn(`Grace period of ${graceSeconds} s over: cutting ${open} connection(s) still open`);
    server.closeAllConnections();
    await allClosed;
    // The handlers of the cut requests get a moment to clean up (an interrupted upload removes its temporary file).
    await new Promise((resolve) => setTimeout(resolve, CUT_HANDLERS_SETTLE_MS));
  } else {
    logger.log(`Requests in flight finished in ${Date.now() - started} ms`);
  }
  // The janitor stops after its current entry, the metrics server and the database close.
  await app.close();
}
