import { Controller, Get, HttpCode, Inject, Res, ServiceUnavailableException } from '@nestjs/common';
import { ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthCheckResult,
} from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators';
import { ShutdownState } from '../operations/shutdown-state';
import { STORAGE_DRIVER, type StorageDriver } from '../storage/storage-driver';

/** Each dependency gets this long to answer a readiness probe; probes usually time out at 1 s or more. */
export const READINESS_CHECK_TIMEOUT_MS = 800;

/** Probes: public (no token), outside the rate limits, in terminus's JSON shape. */
@Public()
@SkipThrottle()
@ApiTags('health')
// An empty requirement: no token needed, said explicitly so that generators (and linters) know.
@ApiSecurity({})
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly shutdown: ShutdownState,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({
    summary: 'Liveness: the process is up and serving (no dependency is checked, so an outage never restarts it)',
  })
  getLiveness(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @HttpCode(200)
  @ApiOperation({
    summary: 'Readiness: the database and the storage answer in time, and the server is not shutting down',
  })
  async getReadiness(@Res() reply: FastifyReply): Promise<void> {
    try {
      await reply.send(await this.health.check(this.readinessChecks()));
    } catch (error) {
      // Terminus answers what is down in its own shape, which load balancers and dashboards know.
      if (!(error instanceof ServiceUnavailableException)) throw error;
      await reply.status(503).header('retry-after', '5').send(error.getResponse());
    }
  }

  private readinessChecks() {
    if (this.shutdown.draining) {
      // No point asking the dependencies: this instance is going away.
      return [() => this.indicators.check('server').down({ message: 'shutting down' })];
    }
    return [
      () => this.database.pingCheck('database').withTimeout(READINESS_CHECK_TIMEOUT_MS),
      () =>
        this.indicators
          .check('storage')
          .attempt(({ signal }) => this.storage.ping(signal))
          .withTimeout(READINESS_CHECK_TIMEOUT_MS),
    ];
  }
}
