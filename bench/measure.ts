import autocannon from 'autocannon';
import { Agent, request as httpRequest } from 'node:http';

/** The side-by-side measurement helpers of the benchmarks. */
export interface Measurement {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

export interface LoadSettings {
  seconds: number;
  connections: number;
  firstWarmup: number;
}

export async function load(
  baseUrl: string,
  method: string,
  path: () => string,
  body: string | undefined,
  headersOrEach: Record<string, string> | (() => Record<string, string>),
  warmUp: boolean,
  amount: number | undefined,
  settings: LoadSettings,
  /** A body of its own for every request (a write that must change something each time). */
  bodyEach?: () => string,
): Promise<Measurement> {
  const headers = typeof headersOrEach === 'function' ? headersOrEach() : headersOrEach;
  const headersEach = typeof headersOrEach === 'function' ? headersOrEach : undefined;
  if (amount !== undefined) {
    if (warmUp) await loadExactly(baseUrl, method, path, headers, settings.firstWarmup, settings.connections);
    return loadExactly(baseUrl, method, path, headers, amount, settings.connections);
  }
  const run = (duration: number) =>
    autocannon({
      url: baseUrl,
      connections: settings.connections,
      duration,
      requests: [
        {
          method: method as 'GET' | 'POST',
          headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
          body,
          setupRequest: (request) => ({
            ...request,
            path: path(),
            ...(headersEach ? { headers: { ...request.headers, ...headersEach() } } : {}),
            ...(bodyEach ? { body: bodyEach() } : {}),
          }),
        },
      ],
    });
  if (warmUp) await run(1); // JIT, connection pools, caches
  const result = await run(settings.seconds);
  return {
    requestsPerSecond: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

/**
 * Exactly `amount` requests (for requests that can be made only once each) over `connections` kept-alive
 * connections, timed here: autocannon rounds a run of a fixed number of requests to whole seconds.
 */
export async function loadExactly(
  baseUrl: string,
  method: string,
  path: () => string,
  headers: Record<string, string>,
  amount: number,
  connections: number,
): Promise<Measurement> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const latencies: number[] = [];
  let errors = 0;
  let left = amount;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const started = performance.now();
      const request = httpRequest(`${baseUrl}${path()}`, { method, agent, headers }, (response) => {
        response.resume();
        response.on('end', () => {
          latencies.push(performance.now() - started);
          if ((response.statusCode ?? 500) >= 300) errors++;
          resolve();
        });
      });
      request.on('error', reject);
      request.end();
    });
  const began = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (left > 0) {
        left--;
        await one();
      }
    }),
  );
  const seconds = (performance.now() - began) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]);
  return { requestsPerSecond: amount / seconds, p50: at(0.5), p99: at(0.99), errors };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** The ratio a/b of each round (the two were measured minutes apart at most), summarized. */
export function perRound(a: Measurement[], b: Measurement[]): { median: number; min: number; max: number } {
  const ratios = a.map((measurement, round) => measurement.requestsPerSecond / b[round].requestsPerSecond);
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios) };
}

export function fmtRatio(ratio: { median: number; min: number; max: number }): string {
  return `${ratio.median.toFixed(2)} (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})`;
}

export function fmt(rounds: Measurement[]): string {
  const errors = rounds.reduce((sum, measurement) => sum + measurement.errors, 0);
  const note = errors > 0 ? ` (${errors} errors/non-2xx!)` : '';
  return `${Math.round(median(rounds.map((m) => m.requestsPerSecond)))} · ${median(rounds.map((m) => m.p50))} ms · ${median(rounds.map((m) => m.p99))} ms${note}`;
}
