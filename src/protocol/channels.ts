import type { BookPayload } from './book.js';
import type { Bar, Execution, Notification, Portfolio, Quote, Status, SystemMessage, Ticker, Trade } from './payloads.js';

/**
 * Channel names of protocol v1 (docs/protocol.md#channels): `KIND:SYMBOL` for market data, plain
 * names for private and public streams.
 */

export type MarketKind = 'trade' | 'quote' | 'ticker' | 'bar.1s' | 'bar.1m' | 'bar.5m' | 'bar.1h' | 'bar.1d' | 'status' | 'book';
export type PrivateChannel = 'portfolio' | 'executions' | 'notifications' | 'system';
export type ChannelKind = MarketKind | PrivateChannel;

/** A channel name: `KIND:SYMBOL` for market data, a plain name for private streams. */
export type Channel = `${MarketKind}:${string}` | PrivateChannel;

/** The payload type carried by a channel, derived from its name. */
export type PayloadOf<C extends string> = C extends `trade:${string}`
  ? Trade
  : C extends `quote:${string}`
    ? Quote
    : C extends `ticker:${string}`
      ? Ticker
      : C extends `bar.${string}:${string}`
        ? Bar
        : C extends `status:${string}`
          ? Status
          : C extends `book:${string}`
            ? BookPayload
            : C extends 'portfolio'
              ? Portfolio
              : C extends 'executions'
                ? Execution
                : C extends 'system'
                  ? SystemMessage
                  : C extends 'notifications'
                    ? Notification
                    : unknown;

/** Market channel kinds, in the order docs/protocol.md lists them. */
export const MARKET_KINDS: readonly MarketKind[] = ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d', 'status', 'book'];
/** Channels without a symbol. `portfolio`, `executions` and `notifications` are private (bound to the token's `sub`). */
export const PLAIN_CHANNELS: readonly PrivateChannel[] = ['portfolio', 'executions', 'notifications', 'system'];

/** Split a channel name into kind and symbol (`quote:AAPL` → quote, AAPL; `portfolio` → portfolio). */
export function parseChannel(channel: string): { kind: string; symbol: string | undefined } {
  const i = channel.indexOf(':');
  return i < 0 ? { kind: channel, symbol: undefined } : { kind: channel.slice(0, i), symbol: channel.slice(i + 1) };
}
