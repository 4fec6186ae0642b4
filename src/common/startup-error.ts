/**
 * Something outside the app (a setting, the database, the bucket) stops the start. The message is one
 * line for the operator, naming the variable to fix; `main.ts` prints it without a stack trace.
 */
export class StartupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** A connection URL fit for a log line: the password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(an unparseable URL)';
  }
}

/** The cause of a failure in a few words: Node's network errors sometimes carry only a code, or several errors. */
export function describeCause(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    const messages = [...new Set(error.errors.map((inner) => describeCause(inner)))];
    return messages.join('; ');
  }
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    const message = error.message.split('\n')[0].trim();
    if (message === '') return code ?? error.name;
    return code && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(error);
}
