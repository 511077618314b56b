import type { FeedHealthSnapshot } from '../../feeds/sdk/health.js';
import type { Bus, Unsubscribe } from '../bus/bus.js';
import { FEED_HEALTH_PATTERN } from '../bus/subjects.js';
import { decodeBusMessage } from '../codec/tick-codec.js';

export interface FeedHealthEntry extends FeedHealthSnapshot {
  /** whether a report arrived recently (a feed process that died stops reporting) */
  reporting: boolean;
  /** ms since the last report reached this process */
  reportAgeMs: number;
}

export interface FailoverView {
  symbol: string;
  primary?: string;
  backup?: string;
  active?: string;
}

/**
 * What a gateway knows about feeds: the latest health snapshot per feed, learned from the bus
 * (`feed.health.*`), so it works the same whether feeds run in this process or in others.
 */
export class FeedHealthView {
  readonly #latest = new Map<string, { snap: FeedHealthSnapshot; at: number }>();
  readonly #unsubscribe: Unsubscribe;
  readonly #expireMs: number;

  /** @param expireMs a feed not heard from for this long is shown with `reporting: false` */
  constructor(bus: Bus, opts: { expireMs?: number } = {}) {
    this.#expireMs = opts.expireMs ?? 10_000;
    this.#unsubscribe = bus.subscribe(FEED_HEALTH_PATTERN, (_subject, payload) => {
      try {
        const snap = decodeBusMessage<FeedHealthSnapshot>(payload);
        if (snap && typeof snap.id === 'string') this.#latest.set(snap.id, { snap, at: Date.now() });
      } catch {
        // a malformed report must not break the gateway
      }
    });
  }

  list(): FeedHealthEntry[] {
    const now = Date.now();
    return [...this.#latest.values()]
      .map(({ snap, at }) => {
        const reportAgeMs = now - at;
        const e: FeedHealthEntry = { ...snap, reporting: reportAgeMs <= this.#expireMs, reportAgeMs };
        // ages grow while we wait for the next report
        if (snap.lastMessageAt !== undefined) e.lastMessageAgeMs = (snap.lastMessageAgeMs ?? 0) + reportAgeMs;
        return e;
      })
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  get(id: string): FeedHealthEntry | undefined {
    return this.list().find((f) => f.id === id);
  }

  /** Failover pairs as reported by the feeds taking part in them. */
  failover(): FailoverView[] {
    const bySymbol = new Map<string, FailoverView>();
    for (const f of this.list()) {
      for (const r of f.failover ?? []) {
        const v = bySymbol.get(r.symbol) ?? { symbol: r.symbol };
        v[r.role] = f.id;
        if (r.active) v.active = f.id;
        bySymbol.set(r.symbol, v);
      }
    }
    return [...bySymbol.values()].sort((a, b) => a.symbol.localeCompare(b.symbol));
  }

  close(): void {
    this.#unsubscribe();
  }
}
