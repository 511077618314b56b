import type { Redis } from 'ioredis';
import { answerTimeouts, createRedis } from '../store/redis-connection.js';
import { RedisScript } from '../store/redis-script.js';
import type { Unsubscribe } from '../bus/bus.js';
import { TickwireError } from '../core/errors.js';
import type { AppendResult, EventListener, EventLog, LogPayload, RetentionOptions, StoredEvent } from './event-log.js';
import { Listeners } from './event-log.js';
import type { ExecutionPayload } from './schemas.js';

/**
 * Atomic append: dedup by id, next sequence, stream entry `<seq>-0`, trim to maxPerUser.
 * KEYS: seq counter, stream, ids (sorted set id -> seq). ARGV: id, payload, maxPerUser, ttl s,
 * floor (the highest seq this process knows was stored for the user).
 *
 * The next sequence is above the counter, above the stream's newest entry and above the floor:
 * a Redis that lost data (restarted without persistence or from an older snapshot, a failover
 * that lost the last writes) has a counter below what was delivered, and a seq given out again
 * is dropped by gateways and clients that already passed it (docs/private-streams.md, "The log").
 */
const APPEND_LUA = `
local ex = redis.call('ZSCORE', KEYS[3], ARGV[1])
if ex then return {tonumber(ex), 1} end
local seq = redis.call('INCR', KEYS[1])
local low = tonumber(ARGV[5])
local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
if top then
  local topSeq = tonumber(string.match(top[1], '^(%d+)-'))
  if topSeq > low then low = topSeq end
end
if seq <= low then
  seq = low + 1
  redis.call('SET', KEYS[1], seq)
end
local max = tonumber(ARGV[3])
redis.call('XADD', KEYS[2], 'MAXLEN', max, tostring(seq) .. '-0', 'd', ARGV[2])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
if seq > max then redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', seq - max) end
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[3], ARGV[4])
return {seq, 0}
`;
const APPEND = new RedisScript(APPEND_LUA, 3);

/** failed appends remembered for their retry (oldest forgotten first) */
const MAX_UNCONFIRMED = 10_000;
/** users whose highest stored seq a log instance remembers (the least recently seen are forgotten) */
const MAX_KNOWN_HEADS = 100_000;

export interface RedisEventLogOptions extends RetentionOptions {
  url: string;
  keyPrefix: string;
  /** acknowledge an append only once this many replicas have it (WAIT); default 0 = the primary */
  ackReplicas?: number;
  /** how long to wait for them before the append fails (it may still be kept: a retry deduplicates) */
  ackTimeoutMs?: number;
  /**
   * how long a command waits for Redis's answer before it fails (config `redis.commandTimeoutMs`;
   * a WAIT for replicas gets `ackTimeoutMs` on top), and a connection with commands waiting for a
   * byte before it is dropped; unset: no limit
   */
  commandTimeoutMs?: number;
}

/**
 * The execution log in Redis for the embedded mode with REDIS_URL: survives restarts. Per user a
 * counter (never expires, so sequences never go back), a stream with entry ids `<seq>-0` capped at
 * maxPerUser, and a sorted set of ids for deduplication. The stream and the id set expire
 * `retentionMs` after the user's last execution (age retention is per user, not per event).
 * Followers are in-process: one process appends (the embedded engine).
 */
export class RedisEventLog<P extends LogPayload = ExecutionPayload> implements EventLog<P> {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #opts: RedisEventLogOptions;
  readonly #listeners = new Listeners<P>();
  /** appends stored on the primary whose replication was not confirmed (not yet announced) */
  readonly #unconfirmed = new Set<string>();
  /**
   * The highest seq this instance saw stored per user (its appends, reads and heads). Redis can
   * lose the counter and the stream together (a restart without persistence): the next append
   * still counts from here, so no seq is given out twice while this process runs. Lost with the
   * process (docs/private-streams.md, "The log").
   */
  readonly #heads = new Map<string, number>();

  constructor(opts: RedisEventLogOptions) {
    this.#opts = opts;
    // a Redis that stops answering fails an append (the order system retries it, deduplicated by
    // id) instead of holding it, and every append behind it, forever
    const timeouts =
      opts.commandTimeoutMs === undefined ? {} : answerTimeouts(opts.commandTimeoutMs + ((opts.ackReplicas ?? 0) > 0 ? (opts.ackTimeoutMs ?? 1000) : 0));
    this.#redis = createRedis(opts.url, {
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      lazyConnect: false,
      connectionName: 'tickwire-exec-log',
      ...timeouts,
    });
    this.#redis.on('error', () => undefined); // reconnects; `ready` reports it
  }

  get ready(): boolean {
    return this.#redis.status === 'ready';
  }

  #keys(user: string): [string, string, string] {
    const base = this.#opts.keyPrefix + encodeURIComponent(user);
    return [`${base}:seq`, `${base}:log`, `${base}:ids`];
  }

  async append(user: string, d: P): Promise<AppendResult> {
    const [seqKey, logKey, idsKey] = this.#keys(user);
    const ttl = Math.max(1, Math.ceil(this.#opts.retentionMs / 1000));
    // an append that fails after it may have been stored (reply lost in a failover, replicas short)
    // stays marked until its retry, which then comes back as a duplicate and is announced then
    const mark = seqKey + '\u0000' + d.id;
    const retried = this.#unconfirmed.has(mark);
    this.#unconfirmed.add(mark);
    if (this.#unconfirmed.size > MAX_UNCONFIRMED) this.#unconfirmed.delete(this.#unconfirmed.values().next().value!);
    const floor = this.#heads.get(user) ?? 0;
    const r = (await APPEND.run(this.#redis, seqKey, logKey, idsKey, d.id, JSON.stringify(d), this.#opts.maxPerUser, ttl, floor)) as [number, number];
    const seq = Number(r[0]);
    const duplicate = Number(r[1]) === 1;
    // asynchronous replication: a write the primary acknowledged can be lost in a failover; with
    // ackReplicas the append only counts (and reaches followers) once replicas have it. A duplicate
    // is waited for too: its first append may not have been replicated yet.
    const want = this.#opts.ackReplicas ?? 0;
    if (want > 0) {
      const got = await this.#redis.wait(want, this.#opts.ackTimeoutMs ?? 1000);
      if (got < want) {
        throw new TickwireError(
          'EXEC_NOT_REPLICATED',
          `execution stored on the Redis primary but only ${got} of ${want} replicas confirmed it within ${this.#opts.ackTimeoutMs ?? 1000} ms (redis.ackReplicas); retry with the same id`,
        );
      }
    }
    this.#unconfirmed.delete(mark);
    // only a confirmed seq counts as given out: one whose replication failed reached no one and
    // may be given again after a failover that lost it (no hole in what clients see)
    this.#remember(user, seq);
    if (!duplicate || retried) this.#listeners.emit(user, { seq, d });
    return { seq, duplicate };
  }

  async read(user: string, after: number, limit: number): Promise<StoredEvent<P>[]> {
    const [, logKey] = this.#keys(user);
    const rows = await this.#redis.xrange(logKey, `${after + 1}-0`, '+', 'COUNT', limit);
    return this.#seen(
      user,
      rows.map((r) => parseRow<P>(r)),
    );
  }

  async tail(user: string, count: number): Promise<StoredEvent<P>[]> {
    if (count <= 0) return [];
    const [, logKey] = this.#keys(user);
    const rows = await this.#redis.xrevrange(logKey, '+', '-', 'COUNT', count);
    return this.#seen(user, rows.map((r) => parseRow<P>(r)).reverse());
  }

  /** The user's last seq: the counter, or what this instance saw stored when Redis lost it since. */
  async head(user: string): Promise<number> {
    const [seqKey] = this.#keys(user);
    const v = await this.#redis.get(seqKey);
    const head = Math.max(v === null ? 0 : Number(v), this.#heads.get(user) ?? 0);
    if (head > 0) this.#remember(user, head);
    return head;
  }

  #remember(user: string, seq: number): void {
    const known = this.#heads.get(user) ?? 0;
    this.#heads.delete(user);
    this.#heads.set(user, Math.max(known, seq));
    if (this.#heads.size > MAX_KNOWN_HEADS) this.#heads.delete(this.#heads.keys().next().value!);
  }

  #seen(user: string, evs: StoredEvent<P>[]): StoredEvent<P>[] {
    const last = evs.at(-1);
    if (last) this.#remember(user, last.seq);
    return evs;
  }

  follow(listener: EventListener<P>): Unsubscribe {
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}

function parseRow<P extends LogPayload>([id, fields]: [string, string[]]): StoredEvent<P> {
  const seq = Number(id.slice(0, id.indexOf('-')));
  let raw = '';
  for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === 'd') raw = fields[i + 1]!;
  return { seq, d: JSON.parse(raw) as P };
}
