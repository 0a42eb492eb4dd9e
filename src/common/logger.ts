// The logger calibd's modules write to: the part of a pino logger they use, so tests and
// embedders can pass anything with these methods. Structured first (an object), then a message.

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}
