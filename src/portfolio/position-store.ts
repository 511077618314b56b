import type { Redis } from 'ioredis';
import { HEARTBEAT_MS } from '../store/batched-writer.js';
import type { StoreRedisTimes } from '../store/batched-writer.js';
import { answerTimeouts, createRedis, keepAlive } from '../store/redis-connection.js';
import type { PositionBook } from './positions.js';

/**
 * Where the portfolio service keeps position books, and how far it has read the executions log
 * (a log position, to resume after a restart). Memory in the embedded mode; Redis when REDIS_URL
 * is set. One portfolio service writes (see docs/private-streams.md).
 */
export interface PositionStore {
  readonly kind: 'memory' | 'redis';
  /** false while the store is known to be unreachable (its connection is down); unset: always reachable */
  readonly ready?: boolean;
  load(): Promise<PositionBook[]>;
  /** one user's book (an evicted one read back), undefined when there is none */
  get(user: string): Promise<PositionBook | undefined>;
  /** stores the book as it is at the call (later changes are saved by a later call) */
  save(book: PositionBook): Promise<void>;
  checkpoint(): Promise<number | undefined>;
  setCheckpoint(position: number): Promise<void>;
  close(): Promise<void>;
}

export class MemoryPositionStore implements PositionStore {
  readonly kind = 'memory' as const;
  readonly #books = new Map<string, string>();
  #checkpoint: number | undefined;

  async load(): Promise<PositionBook[]> {
    return [...this.#books.values()].map((s) => JSON.parse(s) as PositionBook);
  }

  async get(user: string): Promise<PositionBook | undefined> {
    const s = this.#books.get(user);
    return s === undefined ? undefined : (JSON.parse(s) as PositionBook);
  }

  async save(book: PositionBook): Promise<void> {
    this.#books.set(book.user, JSON.stringify(book));
  }

  async checkpoint(): Promise<number | undefined> {
    return this.#checkpoint;
  }

  async setCheckpoint(position: number): Promise<void> {
    this.#checkpoint = position;
  }

  async close(): Promise<void> {}
}

/** Books as JSON in one hash (`<prefix>books`, field = user), the checkpoint in `<prefix>checkpoint`. */
export class RedisPositionStore implements PositionStore {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #prefix: string;

  readonly #stopKeepAlive: () => void;

  /** `times`: config `redis.commandTimeoutMs` and `redis.pingIntervalMs` (unset: 5 s and 2 s) */
  constructor(url: string, prefix: string, times: StoreRedisTimes = {}) {
    this.#prefix = prefix;
    this.#redis = createRedis(url, { maxRetriesPerRequest: 3, connectionName: 'tickwire-portfolio', ...answerTimeouts(times.commandTimeoutMs) });
    this.#redis.on('error', () => undefined);
    this.#stopKeepAlive = keepAlive(this.#redis, times.pingIntervalMs ?? HEARTBEAT_MS);
  }

  get ready(): boolean {
    return this.#redis.status === 'ready';
  }

  async load(): Promise<PositionBook[]> {
    const all = await this.#redis.hgetall(this.#prefix + 'books');
    return Object.values(all).map((s) => JSON.parse(s) as PositionBook);
  }

  async get(user: string): Promise<PositionBook | undefined> {
    const s = await this.#redis.hget(this.#prefix + 'books', user);
    return s === null ? undefined : (JSON.parse(s) as PositionBook);
  }

  async save(book: PositionBook): Promise<void> {
    await this.#redis.hset(this.#prefix + 'books', book.user, JSON.stringify(book));
  }

  async checkpoint(): Promise<number | undefined> {
    const v = await this.#redis.get(this.#prefix + 'checkpoint');
    return v === null ? undefined : Number(v);
  }

  async setCheckpoint(position: number): Promise<void> {
    await this.#redis.set(this.#prefix + 'checkpoint', String(position));
  }

  async close(): Promise<void> {
    this.#stopKeepAlive();
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}
