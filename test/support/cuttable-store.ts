import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

export interface CuttableStore {
  /** S3_ENDPOINT_URL through the proxy. */
  endpoint: string;
  /** Once this many more bytes have come back from the store, every connection is cut and new ones refused. */
  cutAfter(bytes: number): void;
  /** Whether the cut has happened. */
  readonly cut: boolean;
  /** Connections pass again. */
  restore(): void;
  /** The store's answers are held back (a store that stops sending) until `resume`. */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of a real S3 store that can stop mid-stream, as a store that goes away in the
 * middle of a long read: the app talks to it as to the store (presigned URLs name it too).
 */
export async function cuttableStore(target: string): Promise<CuttableStore> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let budget = Infinity;
  let down = false;
  let held: (() => void)[] | null = null;
  const cutAll = () => {
    down = true;
    for (const socket of sockets) socket.destroy();
  };
  const server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = connect(Number(port), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      budget -= chunk.length;
      if (budget <= 0) return cutAll();
      if (held) held.push(() => client.write(chunk));
      else client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cutAfter: (bytes) => {
      budget = bytes;
    },
    get cut() {
      return down;
    },
    restore: () => {
      down = false;
      budget = Infinity;
    },
    pause: () => {
      held ??= [];
    },
    resume: () => {
      const waiting = held ?? [];
      held = null;
      for (const write of waiting) write();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
