import { createRequire } from 'node:module';
import pino from 'pino';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { redactText, redactValue } from './secrets.js';

export type { Logger };

/**
 * pino logger: JSON lines in production, readable when on a terminal (format auto) or when
 * format is pretty. Per-message logging never happens on the hot path; lifecycle is at info.
 */
export function createLogger(cfg: Config['log'], name = 'tickwire', destination?: pino.DestinationStream): Logger {
  const pretty = cfg.format === 'pretty' || (cfg.format === 'auto' && process.stdout.isTTY === true);
  if (pretty && destination === undefined && canResolve('pino-pretty')) {
    return redactChildren(
      pino({ name, level: cfg.level, ...REDACTION, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }),
    );
  }
  return redactChildren(
    destination === undefined ? pino({ name, level: cfg.level, ...REDACTION }) : pino({ name, level: cfg.level, ...REDACTION }, destination),
  );
}

/** pino gives a child's bindings to no formatter: redact them as the child is made (children of children inherit this). */
function redactChildren(log: Logger): Logger {
  const child = log.child;
  log.child = function (this: Logger, bindings, options) {
    return child.call(this, redactValue(bindings) as typeof bindings, options);
  } as Logger['child'];
  return log;
}

/**
 * No secret reaches a log line (docs/operations.md#logs): every field and the message go through
 * src/core/secrets.ts (credentials in URLs, JWTs, bearer tokens, secret query parameters, values of
 * secret-named fields), errors included, whatever module logged them: an ioredis or NATS error
 * naming its URL, a JWKS fetch failure, a provider's refusal quoting the request. Lines are
 * lifecycle events, never per message, so the copy costs nothing that matters.
 */
const REDACTION: Pick<pino.LoggerOptions, 'formatters' | 'hooks' | 'serializers'> = {
  formatters: { log: (obj) => redactValue(obj) as Record<string, unknown> },
  // pino's own err serializer would run on the copy; the copy is already a plain, redacted object
  serializers: { err: (e: unknown) => redactValue(e), error: (e: unknown) => redactValue(e) },
  hooks: {
    logMethod(args, method) {
      // log.error(err): pino would take the line's message from err.message as it stands
      const first: unknown = args[0];
      if (first instanceof Error) args = [{ err: first }, ...(args.length > 1 ? args.slice(1) : [first.message])] as typeof args;
      const redacted = args.map((a) => (typeof a === 'string' ? redactText(a) : a));
      return method.apply(this, redacted as Parameters<typeof method>);
    },
  },
};

function canResolve(id: string): boolean {
  try {
    createRequire(import.meta.url).resolve(id);
    return true;
  } catch {
    return false;
  }
}
