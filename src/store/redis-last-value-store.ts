import type { Redis } from 'ioredis';
import { BatchedWriter, closeStoreRedis, createStoreRedis } from './batched-writer.js';
import type { StoreRedisTimes } from './batched-writer.js';
import type { LastValueStore } from './last-value-store.js';

export interface RedisLastValueStoreOptions extends StoreRedisTimes {
  /** redis://[user:password@]host:port[/db], or redis+sentinel://host:port,.../<master> (src/core/redis-url.ts) */
  url: string;
  /** prepended to every channel key, e.g. `tickwire:lv:` -> `tickwire:lv:quote:AAPL` */
  keyPrefix?: string;
  /** how often pending writes are flushed, ms */
  flushMs?: number;
  /** distinct keys waiting for a flush; puts for new keys beyond this are dropped (counted) */
  maxPendingKeys?: number;
  /** keys per MSET command (a flush pipelines as many commands as it needs) */
  batchKeys?: number;
  /** connection lifecycle (not per write) */
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** client name shown by CLIENT LIST */
  name?: string;
}

export interface RedisLastValueStoreStats {
  /** put() calls */
  puts: number;
  /** values written to Redis */
  written: number;
  /** values replaced by a newer put for the same key before they were flushed */
  coalesced: number;
  /** values lost: rejected because too many keys were pending, or pending when the store closed */
  dropped: number;
  /** MSET pipelines sent */
  flushes: number;
  /** flushes or reads that failed (a failed flush is written again) */
  errors: number;
  /** reconnections after which every held key was written again */
  rewrites: number;
}

/**
 * Last values in Redis, shared by every process: feed processes write, gateways read snapshots.
 *
 * Writes never wait: put() records the latest payload per key and a timer flushes them every
 * `flushMs` with MSET in one pipeline, one flush in flight at a time. While Redis is unreachable
 * the pending map keeps only the latest value per key (bounded by `maxPendingKeys`) and is
 * written when the connection is back. Commands are never queued by the client while
 * disconnected (enableOfflineQueue off), so an outage cannot grow memory.
 *
 * The store keeps the latest value of every key it was given (one per channel this process
 * publishes, as the memory store does) so that Redis never stays behind it: a flush that fails is
 * written again with the next one, and after every reconnection every key is written again,
 * because the Redis it reaches may have lost them (restarted without persistence, or a replica
 * promoted by Sentinel before the last writes reached it). A status or a daily bar, which tick
 * rarely, would otherwise be missing or stale in snapshots until they change.
 */
export class RedisLastValueStore implements LastValueStore {
  readonly stats: RedisLastValueStoreStats = { puts: 0, written: 0, coalesced: 0, dropped: 0, flushes: 0, errors: 0, rewrites: 0 };
  readonly redis: Redis;
  readonly keyPrefix: string;
  #pending = new Map<string, Uint8Array>();
  /** the latest value sent for every key (what Redis must hold), written again after a reconnection; newer ones are pending */
  readonly #held = new Map<string, Uint8Array>();
  #connectedOnce = false;
  readonly #maxPending: number;
  readonly #batchKeys: number;
  readonly #writer: BatchedWriter<Map<string, Uint8Array>>;
  #closed = false;
  #wasReady = false;

  constructor(opts: RedisLastValueStoreOptions) {
    this.keyPrefix = opts.keyPrefix ?? 'tickwire:lv:';
    this.#maxPending = opts.maxPendingKeys ?? 100_000;
    this.#batchKeys = Math.max(1, opts.batchKeys ?? 1000);
    const log = opts.log;
    this.redis = createStoreRedis(opts.url, opts.name ?? 'tickwire-last-values', opts.commandTimeoutMs);
    this.redis.on('ready', () => {
      this.#wasReady = true;
      if (this.#connectedOnce) this.#rewriteHeld();
      this.#connectedOnce = true;
      log?.info({ store: 'redis' }, 'redis last-value store connected');
    });
    this.redis.on('error', (err: Error) => {
      // reported once per outage, not once per reconnect attempt
      if (this.#wasReady) log?.warn({ store: 'redis', err: err.message }, 'redis last-value store error');
    });
    this.redis.on('close', () => {
      if (this.#wasReady && !this.#closed)
        log?.warn({ store: 'redis' }, 'redis last-value store disconnected; writes are held (latest per key) until it is back');
      this.#wasReady = false;
    });
    this.#writer = new BatchedWriter({
      redis: this.redis,
      ...(opts.pingIntervalMs !== undefined ? { pingIntervalMs: opts.pingIntervalMs } : {}),
      flushMs: opts.flushMs ?? 50,
      stats: this.stats,
      take: () => {
        if (this.#pending.size === 0) return undefined;
        const batch = this.#pending;
        this.#pending = new Map();
        return { batch, count: batch.size };
      },
      commands: (batch) => {
        const pipeline = this.redis.pipeline();
        let args: (string | Buffer)[] = [];
        for (const [key, payload] of batch) {
          // a copy of its own: a bus payload is a view into the encoder's shared 8 KiB buffer, which
          // a value held for days (a status, a daily bar) would otherwise keep alive whole
          const own = new Uint8Array(payload); // (Buffer#slice would be a view)
          this.#held.set(key, own);
          args.push(this.keyPrefix + key, Buffer.from(own.buffer, own.byteOffset, own.byteLength));
          if (args.length >= this.#batchKeys * 2) {
            pipeline.mset(...args);
            args = [];
          }
        }
        if (args.length > 0) pipeline.mset(...args);
        return pipeline;
      },
      failed: (batch) => {
        // written again with the next flush, unless a newer value is pending already
        for (const [key, payload] of batch) if (!this.#pending.has(key)) this.#pending.set(key, payload);
        return 0;
      },
    });
  }

  /** After a reconnection: every key to be written again (the values pending stay the newest). */
  #rewriteHeld(): void {
    this.stats.rewrites++;
    for (const [key, payload] of this.#held) if (!this.#pending.has(key)) this.#pending.set(key, payload);
  }

  get ready(): boolean {
    return this.#writer.ready;
  }

  /** Keys waiting to be written. */
  get pendingKeys(): number {
    return this.#pending.size;
  }

  /** Resolve when connected (true) or after `timeoutMs` (false). */
  waitReady(timeoutMs: number): Promise<boolean> {
    return this.#writer.waitReady(timeoutMs);
  }

  put(key: string, payload: Uint8Array): void {
    if (this.#closed) return;
    this.stats.puts++;
    const pending = this.#pending;
    if (pending.has(key)) this.stats.coalesced++;
    else if (pending.size >= this.#maxPending) {
      this.stats.dropped++;
      return;
    }
    pending.set(key, payload);
  }

  /** Write what is pending now (one flush at a time; concurrent callers share it). */
  flush(): Promise<void> {
    return this.#writer.flush();
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    if (keys.length === 0) return [];
    const out: (Uint8Array | undefined)[] = new Array(keys.length);
    const missing: number[] = [];
    // read-your-writes within this process: values not flushed yet are served from memory
    for (let i = 0; i < keys.length; i++) {
      const v = this.#pending.get(keys[i]!);
      if (v) out[i] = v;
      else missing.push(i);
    }
    if (missing.length === 0) return out;
    let values: (Buffer | null)[];
    try {
      values = await this.redis.mgetBuffer(missing.map((i) => this.keyPrefix + keys[i]!));
    } catch (err) {
      this.stats.errors++;
      throw err;
    }
    missing.forEach((idx, j) => {
      out[idx] = values[j] ?? undefined;
    });
    return out;
  }

  /** Flush what is pending (when connected), then disconnect. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#writer.close();
    } finally {
      this.#closed = true;
      this.stats.dropped += this.#pending.size; // Redis unreachable at shutdown
      this.#pending.clear();
      this.#held.clear();
      await closeStoreRedis(this.redis);
    }
  }
}
