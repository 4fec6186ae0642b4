import type { ScratchRoot } from './scratch';

/** A server the harness provides to the e2e tests, started in global setup and stopped in teardown. */
export interface Service {
  /** One line for the setup log. */
  readonly description: string;
  /** Variables handed to the test workers through process.env. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** What global setup leaves for global teardown. */
export interface Harness {
  readonly services: readonly Service[];
  readonly scratch: ScratchRoot;
}

// Global setup and teardown run in the same Jest parent process, so globalThis carries the handles.
const HARNESS = Symbol.for('advanced-notes.e2e-harness');
type HarnessGlobal = typeof globalThis & { [HARNESS]?: Harness };

export function rememberHarness(harness: Harness): void {
  (globalThis as HarnessGlobal)[HARNESS] = harness;
}

export function forgetHarness(): Harness | undefined {
  const global = globalThis as HarnessGlobal;
  const harness = global[HARNESS];
  delete global[HARNESS];
  return harness;
}

/** Stops every service, last started first, and reports all failures together. */
export async function stopServices(services: readonly Service[]): Promise<void> {
  const errors: unknown[] = [];
  for (const service of [...services].reverse()) {
    await service.stop().catch((err: unknown) => errors.push(err));
  }
  if (errors.length > 0) throw new AggregateError(errors, 'e2e harness: stopping servers failed');
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
