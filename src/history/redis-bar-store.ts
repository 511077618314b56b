import type { Redis } from 'ioredis';
import { BatchedWriter, closeStoreRedis, createStoreRedis } from '../store/batched-writer.js';
import type { StoreRedisTimes } from '../store/batched-writer.js';
import type { BarRange } from '../fanout/channels.js';
import type { BarStore, StoredBar } from './bar-store.js';
import { lowerBound, sliceRange, upsertSorted } from './bar-store.js';

/** How long a read waits for a connection that is not ready before it fails. */
const READ_WAIT_MS = 2000;

export interface RedisBarStoreOptions extends StoreRedisTimes {
  /** redis://… or redis+sentinel://… (src/core/redis-url.ts) */
  url: string;
  /** bars kept per channel */
  windowBars: number;
  /** prepended to the channel name: `tickwire:bars:` -> `tickwire:bars:bar.1m:AAPL` */
  keyPrefix?: string;
  /** how often pending bars are written, ms */
  flushMs?: number;
  /** bars waiting for a flush, across all channels; beyond it new bars are dropped (counted) while Redis is away */
  maxPendingBars?: number;
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** client name shown by CLIENT LIST */
  name?: string;
}

export interface RedisBarStoreStats {
  puts: number;
  written: number;
  /** bars lost: too many pending while Redis was unreachable, or pending when the store closed */
  dropped: number;
  flushes: number;
  errors: number;
}

/**
 * The scale-out bar store: one sorted set per channel in Redis, scored by bar start `t`, the
 * member the bar's JSON. Feed processes write, gateways read. Writes never wait: bars are
 * collected and written every `flushMs` in one MULTI per flush (remove any bar with the same
 * `t`, add the new one, trim the set to `windowBars`), so a reader never sees two bars for one
 * start. Reads merge the bars this process has not flushed yet (read-your-writes). Commands are
 * not queued while Redis is away (enableOfflineQueue off); pending bars are bounded. A flush that
 * fails is written again with the next one (a closed bar is put once: a lost write would be a hole
 * in the history for good). Bars are not kept once written: a Redis restarted without persistence
 * has lost them (docs/operations.md, "Bar history store").
 */
export class RedisBarStore implements BarStore {
  readonly stats: RedisBarStoreStats = { puts: 0, written: 0, dropped: 0, flushes: 0, errors: 0 };
  readonly redis: Redis;
  readonly keyPrefix: string;
  readonly #window: number;
  readonly #maxPending: number;
  /** channel -> bars not written yet, sorted by t */
  #pending = new Map<string, StoredBar[]>();
  #pendingCount = 0;
  readonly #writer: BatchedWriter<Map<string, StoredBar[]>>;
  #closed = false;

  constructor(opts: RedisBarStoreOptions) {
    this.keyPrefix = opts.keyPrefix ?? 'tickwire:bars:';
    this.#window = Math.max(1, opts.windowBars);
    this.#maxPending = opts.maxPendingBars ?? 100_000;
    const log = opts.log;
    let wasReady = false;
    this.redis = createStoreRedis(opts.url, opts.name ?? 'tickwire-bars', opts.commandTimeoutMs);
    this.redis.on('ready', () => {
      wasReady = true;
      log?.info({ store: 'redis-bars' }, 'redis bar store connected');
    });
    this.redis.on('error', (err: Error) => {
      if (wasReady) log?.warn({ store: 'redis-bars', err: err.message }, 'redis bar store error');
    });
    this.redis.on('close', () => {
      wasReady = false;
    });
    this.#writer = new BatchedWriter({
      redis: this.redis,
      ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
      flushMs: opts.flushMs ?? 50,
      stats: this.stats,
      take: () => {
        if (this.#pending.size === 0) return undefined;
        const batch = this.#pending;
        const count = this.#pendingCount;
        this.#pending = new Map();
        this.#pendingCount = 0;
        return { batch, count };
      },
      commands: (batch) => {
        const multi = this.redis.multi();
        for (const [channel, bars] of batch) {
          const key = this.keyPrefix + channel;
          for (const bar of bars) {
            multi.zremrangebyscore(key, bar.t, bar.t);
            multi.zadd(key, bar.t, JSON.stringify(bar));
          }
          multi.zremrangebyrank(key, 0, -(this.#window + 1));
        }
        return multi;
      },
      failed: (batch) => {
        // written again with the next flush; a bar put since for the same start is newer and stays
        let lost = 0;
        for (const [channel, bars] of batch) {
          let held = this.#pending.get(channel);
          if (!held) this.#pending.set(channel, (held = []));
          for (const bar of bars) {
            const i = lowerBound(held, bar.t);
            if (held[i]?.t === bar.t) continue;
            if (this.#pendingCount >= this.#maxPending) {
              lost++;
              continue;
            }
            held.splice(i, 0, bar);
            this.#pendingCount++;
          }
          if (held.length === 0) this.#pending.delete(channel);
          if (held.length > this.#window) {
            this.#pendingCount -= held.length - this.#window;
            held.splice(0, held.length - this.#window);
          }
        }
        return lost;
      },
    });
  }

  get ready(): boolean {
    return this.#writer.ready;
  }

  /** Resolve when connected (true) or after `timeoutMs` (false). */
  waitReady(timeoutMs: number): Promise<boolean> {
    return this.#writer.waitReady(timeoutMs);
  }

  put(channel: string, bar: StoredBar): void {
    if (this.#closed) return;
    this.stats.puts++;
    let bars = this.#pending.get(channel);
    // over the bound, only a bar that replaces a held one (same start) is taken: the bound is on
    // bars across every channel (a busy channel holds up to windowBars, and an outage is long)
    if (this.#pendingCount >= this.#maxPending && !(bars && bars[lowerBound(bars, bar.t)]?.t === bar.t)) {
      this.stats.dropped++;
      return;
    }
    if (!bars) this.#pending.set(channel, (bars = []));
    const before = bars.length;
    upsertSorted(bars, bar);
    if (bars.length > before) this.#pendingCount++;
    if (bars.length > this.#window) {
      this.#pendingCount -= bars.length - this.#window;
      bars.splice(0, bars.length - this.#window);
    }
  }

  /** Write what is pending now (one flush at a time; concurrent callers share it). */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  async range(channel: string, q: BarRange): Promise<StoredBar[]> {
    if (q.limit <= 0) return [];
    // connecting (start-up, or back from an outage): wait a little rather than fail at once
    if (!this.ready && !this.#closed) await this.waitReady(READ_WAIT_MS);
    const max = q.to === undefined ? '+inf' : `(${q.to}`;
    const min = q.from === undefined ? '-inf' : String(q.from);
    let members: string[];
    try {
      members = await this.redis.zrevrangebyscore(this.keyPrefix + channel, max, min, 'LIMIT', 0, q.limit);
    } catch (err) {
      this.stats.errors++;
      throw err;
    }
    const bars: StoredBar[] = [];
    for (let i = members.length - 1; i >= 0; i--) bars.push(JSON.parse(members[i]!) as StoredBar);
    // bars of this process not written yet (or in the flush in flight) replace or join them
    for (const held of [this.#writer.writing?.get(channel), this.#pending.get(channel)]) {
      if (held) for (const b of sliceRange(held, q)) upsertSorted(bars, b);
    }
    return bars.length > q.limit ? bars.slice(bars.length - q.limit) : bars;
  }

  /** Flush what is pending (when connected), then disconnect. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#writer.close();
    } finally {
      this.#closed = true;
      this.stats.dropped += this.#pendingCount;
      this.#pending.clear();
      await closeStoreRedis(this.redis);
    }
  }
}
