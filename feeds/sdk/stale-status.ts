import { nowNs } from '../../src/core/time.js';
import type { FeedContext } from './adapter.js';

/**
 * For providers whose trading status is an event stream with no snapshot on (re)subscribe
 * (Alpaca `statuses`, Polygon `LULD`; docs/feeds.md, "Corrections, cancels, trading status and
 * provider bars"): the symbols this adapter reported a status for. When such a symbol is
 * subscribed again (a reconnect, or a symbol removed and added back), the status shown may have
 * changed while the adapter was not subscribed, and the provider will not say so until its next
 * status message: the adapter marks it `stale` (a status report with only `stale: true`), which
 * the engine publishes on `status:SYM` with the last status, until the next report clears it.
 *
 * A restarted feed process is one more such case: the statuses this feed published before are
 * taken up from the last-value store (FeedContext.lastStatus), and a symbol with one is marked
 * on its first subscribe as after a reconnect. Before, the new process knew none of them: a halt
 * published before the restart stayed on `status:SYM`, unmarked, until the provider's next
 * status message (docs/feeds.md, "Trading status after a restart").
 */
export class StaleStatusMarker {
  readonly #reported = new Set<string>();

  /** A status (halted / trading) was reported for `sym`. */
  reported(sym: string): void {
    this.#reported.add(sym);
  }

  /**
   * `symbols` are being subscribed: mark those with a status reported before as stale, by this
   * adapter or (after a restart) by the feed process before it (a status with a `code`: a band
   * report alone has none, and says nothing of a halt).
   */
  resubscribing(symbols: readonly string[], ctx: Pick<FeedContext, 'emit' | 'lastStatus'>): void {
    let ts: bigint | undefined;
    for (const sym of symbols) {
      if (!this.#reported.has(sym) && ctx.lastStatus?.(sym)?.code === undefined) continue;
      ts ??= nowNs();
      ctx.emit({ k: 'status', sym, stale: true, ts });
    }
  }
}
