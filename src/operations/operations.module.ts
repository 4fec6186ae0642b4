import { Global, Module } from '@nestjs/common';
import { Metrics, MetricsServer } from './metrics';
import { ShutdownState } from './shutdown-state';

/** Metrics and the drain state, for every module that reports or winds down. */
@Global()
@Module({
  providers: [Metrics, MetricsServer, ShutdownState],
  exports: [Metrics, ShutdownState],
})
export class OperationsModule {}
