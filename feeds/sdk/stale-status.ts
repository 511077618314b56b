import { nowNs } from '../../src/core/time.js';
import type { TickInput } from './adapter.js';

/**
 * For providers whose trading status is an event stream with no snapshot on (re)subscribe
 * (Alpaca `statuses`, Polygon `LULD`; docs/feeds.md, "Corrections, cancels, trading status and
 * provider bars"): the symbols this adapter reported a status for. When such a symbol is
 * subscribed again (a reconnect, or a symbol removed and added back), the status shown may have
 * changed while the adapter was not subscribed, and the provider will not say so until its next
 * status message: the adapter marks it `stale` (a status report with only `stale: true`), which
 * the engine publishes on `status:SYM` with the last status, until the next report clears it.
 */
export class StaleStatusMarker {
  readonly #reported = new Set<string>();

  /** A status (halted / trading) was reported for `sym`. */
  reported(sym: string): void {
    this.#reported.add(sym);
  }

  /** `symbols` are being subscribed: mark those reported before as stale. */
  resubscribing(symbols: readonly string[], emit: (tick: TickInput) => void): void {
    let ts: bigint | undefined;
    for (const sym of symbols) {
      if (!this.#reported.has(sym)) continue;
      ts ??= nowNs();
      emit({ k: 'status', sym, stale: true, ts });
    }
  }
}
