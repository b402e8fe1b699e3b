/**
 * Logs: JSON lines (pino) for machines, or coloured single lines for a person at a terminal.
 * `auto` (LOG_FORMAT's default) picks pretty output when stdout is a TTY, so `npm start` in a
 * terminal is readable while containers and log shippers get JSON.
 */
import { pino, type Level, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { traceLogFields } from './tracing.js';

export type { Logger };
export type LogLevel = Level | 'silent';
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
}

export function createLogger(name: string, { level = 'info', format = 'auto' }: LoggerOptions = {}): Logger {
  const usePretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  // A line written inside a traced request or job carries its trace_id and span_id (shared/tracing.ts).
  const options = { name, level, mixin: traceLogFields };
  if (!usePretty) return pino(options);
  // Synchronous on the main thread (no transport worker): lines come out in order with the
  // process's other output, and nothing is lost when the process exits right after logging.
  return pino(
    options,
    pretty({ colorize: true, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }),
  );
}

/** The logger settings of a loaded Config (shared/config.ts). */
export function logOptions(config: { LOG_LEVEL: LogLevel; LOG_FORMAT: LogFormat }): LoggerOptions {
  return { level: config.LOG_LEVEL, format: config.LOG_FORMAT };
}
