import { Injectable } from '@nestjs/common';

/**
 * Whether the process is draining (a SIGTERM or SIGINT arrived). Readiness answers 503 from the
 * moment it is set, responses close their connections, and background work winds down.
 */
@Injectable()
export class ShutdownState {
  private readonly controller = new AbortController();

  get draining(): boolean {
    return this.controller.signal.aborted;
  }

  /** Aborted when the drain begins. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  beginDrain(): void {
    this.controller.abort();
  }
}
