import { createServer, type AddressInfo, type Socket } from 'node:net';

export interface StoreThatGoesDown {
  /** S3_ENDPOINT_URL of the store. */
  endpoint: string;
  /** From now on it accepts connections and never says a word. */
  freeze(): void;
  /** From now on it refuses connections. */
  stop(): Promise<void>;
}

/**
 * An S3 endpoint that answers the app's start-up check of the bucket ("no such key") and can then be
 * frozen or stopped: the app only starts against a bucket it can reach, so an outage must come after.
 */
export async function storeThatGoesDown(): Promise<StoreThatGoesDown> {
  let answering = true;
  const sockets = new Set<Socket>();
  const noSuchKey = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>';
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    if (answering)
      socket.once('data', () =>
        socket.end(
          `HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\nContent-Length: ${noSuchKey.length}\r\nConnection: close\r\n\r\n${noSuchKey}`,
        ),
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    freeze: () => {
      answering = false;
    },
    stop: () => {
      answering = false;
      stopped ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return stopped;
    },
  };
}
