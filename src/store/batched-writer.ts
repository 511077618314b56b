import type { ChainableCommander, Redis } from 'ioredis';
import { answerTimeouts, createRedis } from './redis-connection.js';

/** The store connection's times (config `redis.commandTimeoutMs`, `redis.pingIntervalMs`); unset: 5 s and 2 s. */
export interface StoreRedisTimes {
  /** how long a command waits for Redis's answer, and a connection with commands waiting for a byte (ANSWER_TIMEOUTS) */
  commandTimeoutMs?: number;
  /** how often an idle connection sends a PING (HEARTBEAT_MS) */
  pingIntervalMs?: number;
}

/**
 * A Redis connection for a store that writes in batches: commands are never queued by the client
 * while Redis is away (enableOfflineQueue off, so an outage cannot grow memory), a command fails
 * after one retry or when Redis has not answered it in time (ANSWER_TIMEOUTS, or `commandTimeoutMs`), a connection that has not answered for as long is
 * dropped, and the client reconnects forever, backing off to 2 s.
 */
export function createStoreRedis(url: string, connectionName: string, commandTimeoutMs?: number): Redis {
  return createRedis(url, {
    connectionName,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    ...answerTimeouts(commandTimeoutMs),
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  });
}

/** Counters a BatchedWriter adds to (the store's own stats object). */
export interface BatchedWriterStats {
  /** items written */
  written: number;
  /** items lost: in a flush that failed (when the store does not take them back), or held at close */
  dropped: number;
  /** pipelines (or MULTIs) sent */
  flushes: number;
  /** flushes that failed */
  errors: number;
}

export interface BatchedWriterOptions<B> {
  redis: Redis;
  /** how often pending items are written, ms */
  flushMs: number;
  /** hands over what is pending (the store starts a new batch), with its item count; undefined when nothing is */
  take(): { batch: B; count: number } | undefined;
  /** queues the batch's commands on a pipeline or a MULTI of `redis` */
  commands(batch: B): ChainableCommander;
  /**
   * A flush failed: the store takes the batch back to write it with the next flush (items it
   * holds a newer version of stay newer) and answers how many items it gave up (counted in
   * `dropped`). Without it the batch is dropped.
   */
  failed?(batch: B): number;
  stats: BatchedWriterStats;
  /** how often an idle connection sends a PING, ms (default HEARTBEAT_MS) */
  pingIntervalMs?: number;
}

/**
 * The write side of a store whose writes never wait (style.md §2, "batch writes"): put() adds to a
 * pending batch in the store, and this writer takes that batch every `flushMs` and sends it in one
 * round trip, one flush in flight at a time, only while connected. A flush that fails is counted
 * (`errors`) and handed back to the store (`failed`), which writes it again with the next flush:
 * a value is never lost to a failed write while its process runs. Used by RedisLastValueStore
 * and RedisBarStore (src/history).
 */
/**
 * How often an idle store connection (a gateway's, which only reads on a subscribe) sends a PING:
 * a Redis that stops answering is only noticed while a command waits (ANSWER_TIMEOUTS), and
 * `/ready` must not say the store is fine meanwhile.
 */
export const HEARTBEAT_MS = 2000;

export class BatchedWriter<B> {
  readonly #o: BatchedWriterOptions<B>;
  readonly #timer: NodeJS.Timeout;
  readonly #heartbeat: NodeJS.Timeout;
  #inFlight: Promise<void> | undefined;
  #writing: B | undefined;
  #closed = false;

  constructor(opts: BatchedWriterOptions<B>) {
    this.#o = opts;
    this.#timer = setInterval(() => void this.flush(), opts.flushMs);
    this.#timer.unref();
    this.#heartbeat = setInterval(() => {
      if (this.ready && !this.#inFlight) opts.redis.ping().catch(() => undefined); // a failure drops the connection
    }, opts.pingIntervalMs ?? HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  get ready(): boolean {
    return !this.#closed && this.#o.redis.status === 'ready';
  }

  /** the batch being written: its items are still the store's to serve until the write is done */
  get writing(): B | undefined {
    return this.#writing;
  }

  /** Resolve when connected (true) or after `timeoutMs` (false). */
  async waitReady(timeoutMs: number): Promise<boolean> {
    if (this.ready) return true;
    const redis = this.#o.redis;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(this.ready), timeoutMs);
      redis.on('ready', onReady);
    });
  }

  /** Write what is pending now (one flush at a time; concurrent callers share it). */
  flush(): Promise<void> {
    if (this.#inFlight) return this.#inFlight;
    if (!this.ready) return Promise.resolve();
    const taken = this.#o.take();
    if (!taken) return Promise.resolve();
    this.#writing = taken.batch;
    this.#inFlight = this.#write(taken.batch, taken.count).finally(() => {
      this.#inFlight = undefined;
      this.#writing = undefined;
    });
    return this.#inFlight;
  }

  async #write(batch: B, count: number): Promise<void> {
    const commands = this.#o.commands(batch);
    const stats = this.#o.stats;
    stats.flushes++;
    try {
      const results = (await commands.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed) throw failed[0];
      stats.written += count;
    } catch {
      stats.errors++;
      stats.dropped += this.#o.failed ? this.#o.failed(batch) : count;
    }
  }

  /**
   * Stop the timer, let the flush in flight finish and flush what is pending (when connected);
   * nothing is written after. What the store still holds then is lost: it counts it in
   * `dropped` and closes the connection (closeStoreRedis).
   */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#heartbeat);
    try {
      await this.#inFlight;
      await this.flush();
    } finally {
      this.#closed = true;
    }
  }
}

/** QUIT when connected (waiting at most 1 s), then drop the connection. */
export async function closeStoreRedis(redis: Redis): Promise<void> {
  if (redis.status === 'ready') {
    await Promise.race([redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
  redis.disconnect();
}
