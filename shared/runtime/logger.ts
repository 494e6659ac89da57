// The one structured-logger shape every process writes to: pino satisfies it, and so does the
// Lambda handlers' Powertools logger through `pinoStyle`. Components that only report progress
// and trouble take `Pick<Logger, 'info' | 'warn'>`.

/** A structured logger: a fields object first, then the message (pino's argument order). */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}
