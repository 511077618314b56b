import type { Access } from '../access/entitlements.js';
import type { Principal } from '../fanout/channels.js';
import type { NotificationEvent } from './schemas.js';

/** What a gateway knows of a connection's entitlements, for the alert items of its notifications. */
export interface NotificationEntitlements {
  /** the principal's access to a symbol (a symbol not in the instrument registry: `none`) */
  access(principal: Principal): (symbol: string) => Access;
  /** true when the principal sees every symbol in real time: nothing is ever redacted */
  seesAll(principal: Principal): boolean;
  /** a name of the principal's entitlements: equal for tokens with the same entitlements claim */
  id(principal: Principal): string;
  /** this gateway's auth.delayMs: a delayed alert must have been evaluated at least this late */
  delayMs: number;
}

/**
 * An alert notification as a connection with `access` may see it (docs/alerts.md, Entitlements).
 * The alert service holds a rule once a gateway tells it that its user lost the symbol, but a
 * firing can be in the log before that (or from before the loss): the gateway checks each alert
 * it delivers against the connection's own token. An alert of a real-time rule needs the symbol
 * in real time; one of a delayed rule (`data.delayed`) needs it at least delayed, evaluated at no
 * shorter delay than this gateway's. Otherwise its prices are left out (`data.value`,
 * `data.previous`, and the body that states them) and it is marked `redacted`; the rest (rule id,
 * level, firing number, time) is the user's own rule and stays. Any other item is returned as is.
 */
export function redactAlert(d: NotificationEvent, access: (symbol: string) => Access, delayMs: number): NotificationEvent {
  if (d.kind !== 'notification' || d.type !== 'alert' || d.data === undefined) return d;
  const data = d.data;
  const symbol = data.symbol;
  if (typeof symbol !== 'string') return d;
  const a = access(symbol);
  const delayed = data.delayed === true;
  const ok = a === 'realtime' || (a === 'delayed' && delayed && typeof data.delayMs === 'number' && data.delayMs >= delayMs);
  if (ok) return d;
  const { value: _value, previous: _previous, ...kept } = data;
  return {
    ...d,
    body: `${symbol}: prices withheld (your current entitlements do not cover ${symbol}${delayed ? '' : ' in real time'})`,
    data: kept,
    redacted: true,
  };
}
