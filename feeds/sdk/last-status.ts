import type { FeedContext } from './adapter.js';

/**
 * For an adapter that publishes a symbol's trading status only when the provider's code for it
 * changes (Binance, Coinbase, Kraken): the code to compare the provider's answer with when the
 * adapter has published none for `sym` yet. That is the code of the status the engine holds
 * from this feed (FeedContext.lastStatus: after a restart, the one the process before published),
 * else `tradingCode` (protocol v1: a symbol with no status report is trading).
 *
 * Before, the adapter took every symbol for trading when it started, so after a restart of the
 * feed process a halt it had published stayed on `status:SYM` for ever once the provider said
 * trading again: that answer matched the adapter's assumption and was never published
 * (docs/feeds.md, "Trading status after a restart"). A held status with no code (a band
 * alone is trading; a halt without a code cannot come from these adapters) compares as
 * `tradingCode` when trading, and as nothing the provider sends when halted.
 */
export function lastStatusCode(ctx: Pick<FeedContext, 'lastStatus'> | undefined, sym: string, tradingCode: string): string {
  const last = ctx?.lastStatus?.(sym);
  if (!last) return tradingCode;
  if (last.code !== undefined) return last.code;
  return last.status === 'trading' ? tradingCode : '\u0000halted';
}
