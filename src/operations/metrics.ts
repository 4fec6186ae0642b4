import { createServer, type Server } from 'node:http';
import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { AppConfig, ConfigValidationError } from '../config/app-config';

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * The app's Prometheus metrics, in a registry of its own (several apps in one process, as in the
 * tests, never share counters). Read only on the internal metrics port (MetricsServer).
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time from request to response, by method, route template and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: SECONDS_BUCKETS,
    registers: [this.registry],
  });

  readonly clipTransitions = new Counter({
    name: 'audio_clip_transitions_total',
    help: 'Audio clip state changes: new → pending, pending → ready | failed | expired, and deletions.',
    labelNames: ['from', 'to'] as const,
    registers: [this.registry],
  });

  readonly storageDuration = new Histogram({
    name: 'storage_operation_duration_seconds',
    help: 'Duration of storage driver calls (presigning included), by driver and operation.',
    labelNames: ['driver', 'operation'] as const,
    buckets: [0.0001, 0.00025, 0.0005, ...SECONDS_BUCKETS],
    registers: [this.registry],
  });

  readonly storageErrors = new Counter({
    name: 'storage_operation_errors_total',
    help: 'Failed storage driver calls, by driver, operation and error code.',
    labelNames: ['driver', 'operation', 'code'] as const,
    registers: [this.registry],
  });

  readonly janitorRuns = new Counter({
    name: 'janitor_runs_total',
    help: 'Janitor passes, by outcome (success, error).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly janitorDuration = new Histogram({
    name: 'janitor_run_duration_seconds',
    help: 'Duration of janitor passes.',
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 20, 30, 60],
    registers: [this.registry],
  });

  private countBacklog: (() => Promise<number>) | undefined;

  readonly deletionBacklog = new Gauge({
    name: 'deletion_outbox_backlog',
    help: 'Objects recorded for deletion and not yet deleted (the outbox the janitor works through).',
    registers: [this.registry],
    collect: async () => {
      if (!this.countBacklog) return;
      try {
        this.deletionBacklog.set(await this.countBacklog());
      } catch {
        // An unreachable database must not break the scrape: the gauge keeps its last value.
      }
    },
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Read at each scrape: the outbox belongs to the deletion code, which knows how to count it. */
  measureDeletionBacklog(count: () => Promise<number>): void {
    this.countBacklog = count;
  }
}

/** Serves `GET /metrics` on METRICS_PORT, a port of its own: never on the public API's port. */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Metrics');
  private server: Server | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly config: AppConfig,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const port = this.config.operations.metricsPort;
    if (port === null) return;
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('Metrics are at GET /metrics\n');
        return;
      }
      this.metrics.registry.metrics().then(
        (text) => response.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
        (error: unknown) => {
          this.logger.error(`Metrics could not be collected: ${String(error)}`);
          response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          error.code === 'EADDRINUSE'
            ? new ConfigValidationError([
                `METRICS_PORT ${port} is in use by another process: set METRICS_PORT to a free port, or 0 to turn metrics off`,
              ])
            : error,
        ),
      );
      server.listen(port, this.config.host, () => resolve());
    });
    this.server = server;
    this.logger.log(`Prometheus metrics on http://${this.config.host}:${port}/metrics`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
