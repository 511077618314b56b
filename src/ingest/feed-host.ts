import { hostname } from 'node:os';
import type { FeedAdapter, FeedContext, FeedLogger } from '../../feeds/sdk/adapter.js';
import { FeedHealthTracker } from '../../feeds/sdk/health.js';
import type { FeedHealthSnapshot } from '../../feeds/sdk/health.js';
import type { Bus } from '../bus/bus.js';
import { feedHealthSubject } from '../bus/subjects.js';
import { encodeBusMessage } from '../codec/tick-codec.js';
import type { FailoverSelector } from './failover.js';
import type { TickPublisher } from './tick-publisher.js';

/** Kept for callers of the first version: a health snapshot is a superset of it. */
export type FeedHealth = FeedHealthSnapshot;

export interface FeedHostOptions {
  /** publish health snapshots on `feed.health.<id>` (every gateway serves them at /v1/feeds) */
  bus?: Bus;
  /** how often health is published, ms (also on every state change); default 1000 */
  healthIntervalMs?: number;
  /** per-symbol failover: the host reports feed states to it and shows roles in health */
  failover?: FailoverSelector;
}

interface HostedFeed {
  adapter: FeedAdapter;
  abort: AbortController;
  health: FeedHealthTracker;
}

/**
 * Runs adapters in this process and routes their ticks into the publisher. Keeps a health
 * record per feed (state, message age and rates, reconnects, gaps, errors) and publishes it on
 * the bus so that gateways in other processes can serve it.
 */
export class FeedHost {
  readonly #publisher: TickPublisher;
  readonly #log: FeedLogger;
  readonly #opts: FeedHostOptions;
  readonly #feeds = new Map<string, HostedFeed>();
  readonly #host = hostname();
  #timer: NodeJS.Timeout | undefined;

  constructor(publisher: TickPublisher, log: FeedLogger, opts: FeedHostOptions = {}) {
    this.#publisher = publisher;
    this.#log = log;
    this.#opts = opts;
    opts.failover?.onSwitch(() => this.publishHealth());
  }

  /** Start one adapter. `adapterType` is shown in health when it differs from the feed id. */
  async start(adapter: FeedAdapter, adapterType?: string): Promise<void> {
    if (this.#feeds.has(adapter.id)) throw new Error(`feed "${adapter.id}" is already running in this process`);
    const abort = new AbortController();
    const health = new FeedHealthTracker(adapter.id, adapterType);
    const feed: HostedFeed = { adapter, abort, health };
    this.#feeds.set(adapter.id, feed);
    const publisher = this.#publisher;
    if (adapter.providesBars?.length) publisher.declareProviderBars(adapter.id, adapter.providesBars);
    if (adapter.quotesOnly) publisher.declareQuotesOnly(adapter.id);
    const log = this.#log;
    const failover = this.#opts.failover;
    // provider text repaired by the publisher (a lone surrogate), or a tick it refused for its
    // numbers, counts as a feed error, with why (lastError); the log says it once per feed, not
    // once per tick
    let problemLogged = false;
    const onProblem = (detail: string): void => {
      health.error(detail);
      if (problemLogged) return;
      problemLogged = true;
      log.warn({ feed: adapter.id }, `${detail} (later ones are counted in the feed's errors)`);
    };
    const ctx: FeedContext = {
      emit(tick) {
        health.tick();
        publisher.publish(adapter.id, tick, onProblem);
      },
      status: (state, detail) => {
        const changed = health.setState(state, detail);
        if (abort.signal.aborted && state !== 'stopped') return;
        const line = { feed: adapter.id, state, detail };
        if (state === 'auth_failed' || state === 'error') log.error(line, 'feed state');
        else if (changed && (state === 'reconnecting' || state === 'stale')) log.warn(line, 'feed state');
        else if (changed) log.info(line, 'feed state');
        failover?.onFeedState(adapter.id, state);
        if (changed) this.#publishOne(feed);
      },
      setQuotesOnly: (symbols, on) => publisher.setQuotesOnlySymbols(adapter.id, symbols, on),
      lastStatus: (sym) => publisher.lastStatus(adapter.id, sym),
      signal: abort.signal,
      log,
      metrics: {
        message: () => health.message(),
        reconnect: () => health.reconnect(),
        gap: (missed, detail) => {
          health.gap(missed);
          log.warn({ feed: adapter.id, missed, detail }, 'feed sequence gap');
        },
        error: (detail) => health.error(detail),
      },
    };
    this.#ensureTimer();
    await adapter.start(ctx);
  }

  health(): FeedHealthSnapshot[] {
    return [...this.#feeds.values()].map((f) => this.#snapshot(f));
  }

  /** Publish every feed's health now (also done on a timer and on state changes). */
  publishHealth(): void {
    for (const f of this.#feeds.values()) this.#publishOne(f);
  }

  #snapshot(f: HostedFeed): FeedHealthSnapshot {
    const roles = this.#opts.failover?.rolesOf(f.adapter.id);
    return f.health.snapshot({
      host: this.#host,
      pid: process.pid,
      ...(roles && roles.length > 0 ? { failover: roles } : {}),
      // what `tickwire record` notes in a recording, so that its replay builds the same tickers
      ...(f.adapter.quotesOnly ? { quotesOnly: true as const } : {}),
    });
  }

  #publishOne(f: HostedFeed): void {
    const bus = this.#opts.bus;
    if (!bus) return;
    bus.publish(feedHealthSubject(f.adapter.id), encodeBusMessage(this.#snapshot(f)));
  }

  #ensureTimer(): void {
    if (this.#timer || !this.#opts.bus) return;
    this.#timer = setInterval(() => this.publishHealth(), this.#opts.healthIntervalMs ?? 1000);
    this.#timer.unref();
  }

  async stopAll(): Promise<void> {
    const all = [...this.#feeds.values()];
    await Promise.allSettled(
      all.map(async (f) => {
        f.abort.abort();
        await f.adapter.stop();
      }),
    );
    // last word: every feed is stopped
    this.publishHealth();
    this.#feeds.clear();
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
