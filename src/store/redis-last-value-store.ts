import type { Redis } from 'ioredis';
import { createRedis } from './redis-connection.js';
import type { LastValueStore } from './last-value-store.js';

export interface RedisLastValueStoreOptions {
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
  /** values lost: rejected because too many keys were pending, or in a flush that failed */
  dropped: number;
  /** MSET pipelines sent */
  flushes: number;
  /** flushes or reads that failed */
  errors: number;
}

/**
 * Last values in Redis, shared by every process: feed processes write, gateways read snapshots.
 *
 * Writes never wait: put() records the latest payload per key and a timer flushes them every
 * `flushMs` with MSET in one pipeline, one flush in flight at a time. While Redis is unreachable
 * the pending map keeps only the latest value per key (bounded by `maxPendingKeys`) and is
 * written when the connection is back; a flush that fails mid-way is counted in `dropped` and not
 * retried (the next tick for that key supersedes it anyway). Commands are never queued by the
 * client while disconnected (enableOfflineQueue off), so an outage cannot grow memory.
 */
export class RedisLastValueStore implements LastValueStore {
  readonly stats: RedisLastValueStoreStats = { puts: 0, written: 0, coalesced: 0, dropped: 0, flushes: 0, errors: 0 };
  readonly redis: Redis;
  readonly keyPrefix: string;
  #pending = new Map<string, Uint8Array>();
  readonly #maxPending: number;
  readonly #batchKeys: number;
  readonly #timer: NodeJS.Timeout;
  #inFlight: Promise<void> | undefined;
  #closed = false;
  #wasReady = false;

  constructor(opts: RedisLastValueStoreOptions) {
    this.keyPrefix = opts.keyPrefix ?? 'tickwire:lv:';
    this.#maxPending = opts.maxPendingKeys ?? 100_000;
    this.#batchKeys = Math.max(1, opts.batchKeys ?? 1000);
    const log = opts.log;
    this.redis = createRedis(opts.url, {
      connectionName: opts.name ?? 'tickwire-last-values',
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 5000,
      // reconnect forever, backing off to 2 s
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    });
    this.redis.on('ready', () => {
      this.#wasReady = true;
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
    this.#timer = setInterval(() => void this.flush(), opts.flushMs ?? 50);
    this.#timer.unref();
  }

  get ready(): boolean {
    return !this.#closed && this.redis.status === 'ready';
  }

  /** Keys waiting to be written. */
  get pendingKeys(): number {
    return this.#pending.size;
  }

  /** Resolve when connected (true) or after `timeoutMs` (false). */
  async waitReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(this.ready), timeoutMs);
      this.redis.on('ready', onReady);
    });
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
    if (this.#inFlight) return this.#inFlight;
    if (this.#pending.size === 0 || !this.ready) return Promise.resolve();
    const batch = this.#pending;
    this.#pending = new Map();
    this.#inFlight = this.#write(batch).finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #write(batch: Map<string, Uint8Array>): Promise<void> {
    const pipeline = this.redis.pipeline();
    let args: (string | Buffer)[] = [];
    for (const [key, payload] of batch) {
      args.push(this.keyPrefix + key, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
      if (args.length >= this.#batchKeys * 2) {
        pipeline.mset(...args);
        args = [];
      }
    }
    if (args.length > 0) pipeline.mset(...args);
    this.stats.flushes++;
    try {
      const results = (await pipeline.exec()) ?? [];
      if (results.some(([err]) => err)) throw results.find(([err]) => err)![0];
      this.stats.written += batch.size;
    } catch {
      this.stats.errors++;
      this.stats.dropped += batch.size;
    }
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
    clearInterval(this.#timer);
    try {
      await this.#inFlight;
      await this.flush();
    } finally {
      this.#closed = true;
      this.stats.dropped += this.#pending.size; // Redis unreachable at shutdown
      this.#pending.clear();
      if (this.redis.status === 'ready') {
        await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
      }
      this.redis.disconnect();
    }
  }
}
