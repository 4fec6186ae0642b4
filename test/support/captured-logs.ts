import type { INestApplicationContext, LoggerService, LogLevel } from '@nestjs/common';

export interface LogEntry {
  level: LogLevel;
  /** The logger's name, e.g. `S3StorageDriver`. */
  context: string | undefined;
  message: string;
}

/**
 * Takes the app's log lines instead of printing them, for tests that provoke errors on purpose and
 * assert on what was logged. It replaces the app's logger through Nest's logger abstraction
 * (`app.useLogger`), which every `new Logger(…)` in the app writes to, whatever logger backs it.
 */
export class CapturedLogs implements LoggerService {
  readonly entries: LogEntry[] = [];

  static of(app: INestApplicationContext): CapturedLogs {
    const logs = new CapturedLogs();
    app.useLogger(logs);
    return logs;
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.add('log', message, rest);
  }

  error(message: unknown, ...rest: unknown[]): void {
    this.add('error', message, rest);
  }

  warn(message: unknown, ...rest: unknown[]): void {
    this.add('warn', message, rest);
  }

  debug(message: unknown, ...rest: unknown[]): void {
    this.add('debug', message, rest);
  }

  verbose(message: unknown, ...rest: unknown[]): void {
    this.add('verbose', message, rest);
  }

  /** The entries at one level, as `context: message` lines. */
  lines(level: LogLevel): string[] {
    return this.entries
      .filter((entry) => entry.level === level)
      .map((entry) => `${entry.context ?? ''}: ${entry.message}`);
  }

  private add(level: LogLevel, message: unknown, rest: unknown[]): void {
    // Nest passes the logger's context as the last argument (after a stack, for errors).
    const context = typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined;
    this.entries.push({ level, context, message: typeof message === 'string' ? message : JSON.stringify(message) });
  }
}
