import { randomUUID } from 'node:crypto';
import { DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Redis } from 'ioredis';
import { PF_PUT_PREFIX } from '../bus/private-subjects.js';
import { TickwireError } from '../core/errors.js';
import { escapeSubjectToken } from '../core/symbols.js';
import { ensureStream, retryTransient } from '../executions/jetstream-event-log.js';
import { answerTimeouts, createRedis } from '../store/redis-connection.js';

/**
 * The durable record of a user's last positions PUT: the book it set and the log position it is
 * valid from (docs/private-streams.md, "A book set by a PUT").
 *
 * Why a record of its own and not an event in the executions log: the log numbers a user's
 * events 1, 2, 3, ... without holes for clients (`since`, the SDK's gap detection), so an event
 * that gateways had to hide would show as a hole in every replay and live feed; and the log
 * forgets its oldest events (executions.maxPerUser, retentionSec), while a PUT is the base of every
 * book after it for as long as no other PUT replaces it. The record is ordered against the
 * executions by `seq`: the user's last log sequence when the PUT was made (executions up to it are
 * included, later ones are applied on top), exactly as the book the PUT set. A book the position
 * store lost is rebuilt as the last record plus the executions after its `seq`, and marked
 * incomplete when the log no longer holds some of them.
 *
 * It lives beside the log it is rebuilt with, and is as durable as it: JetStream (a stream of its
 * own, file storage, the executions' replicas, one message per user, no age limit), the log's
 * Redis (a key per user next to the log's keys, confirmed by replicas with redis.ackReplicas), or
 * memory (embedded, where the log and the books are lost with the process anyway).
 */
export interface PutRecord {
  /** unique per PUT: a stored book set by this PUT (or built on it) carries it (`PositionBook.put`) */
  id: string;
  /** when the PUT was made (ms since the epoch) */
  t: number;
  /** the user's last log sequence when the PUT was made: the executions it includes */
  seq: number;
  ccy: string;
  /** the positions set, one line per symbol (quantity not 0) */
  positions: { sym: string; qty: number; cost: number }[];
}

export interface PutRecords {
  readonly kind: 'memory' | 'redis' | 'jetstream';
  /** the user's last record; undefined when none was ever made (or it was removed by `restore`) */
  last(user: string): Promise<PutRecord | undefined>;
  /** stores `rec` as the user's last record, resolved once it is durable (replicated where the log is) */
  put(user: string, rec: PutRecord): Promise<void>;
  /** puts back what `last` gave before a `put` (a PUT that failed afterwards changes nothing) */
  restore(user: string, prev: PutRecord | undefined): Promise<void>;
  close(): Promise<void>;
}

export function newPutId(): string {
  return randomUUID();
}

/** A record as stored, or undefined when it is not one (never written by this code: left out). */
function parseRecord(raw: string): PutRecord | undefined {
  let r: unknown;
  try {
    r = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof r !== 'object' || r === null) return undefined;
  const o = r as Partial<PutRecord>;
  if (typeof o.id !== 'string' || typeof o.t !== 'number' || typeof o.seq !== 'number' || typeof o.ccy !== 'string' || !Array.isArray(o.positions)) {
    return undefined;
  }
  return o as PutRecord;
}

/** Embedded without Redis: the records live as long as the process (as the memory log and books). */
export class MemoryPutRecords implements PutRecords {
  readonly kind = 'memory' as const;
  readonly #records = new Map<string, string>();

  async last(user: string): Promise<PutRecord | undefined> {
    const s = this.#records.get(user);
    return s === undefined ? undefined : parseRecord(s);
  }

  async put(user: string, rec: PutRecord): Promise<void> {
    this.#records.set(user, JSON.stringify(rec));
  }

  async restore(user: string, prev: PutRecord | undefined): Promise<void> {
    if (prev) this.#records.set(user, JSON.stringify(prev));
    else this.#records.delete(user);
  }

  async close(): Promise<void> {}
}

export interface RedisPutRecordsOptions {
  url: string;
  /** the executions log's key prefix (executions.redisKeyPrefix): the record is `<prefix><user>:put`, beside the log */
  keyPrefix: string;
  /** as the log's (redis.ackReplicas, redis.ackTimeoutMs): a record counts once replicas have it */
  ackReplicas?: number;
  ackTimeoutMs?: number;
  /** redis.commandTimeoutMs; unset: no limit */
  commandTimeoutMs?: number;
}

/**
 * Embedded with REDIS_URL: one string key per user next to the executions log's keys
 * (`<executions.redisKeyPrefix><user>:put`, the user URI-encoded as there), with no expiry (the
 * log's keys expire with retention; the last PUT stays the base of the book).
 */
export class RedisPutRecords implements PutRecords {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #opts: RedisPutRecordsOptions;

  constructor(opts: RedisPutRecordsOptions) {
    this.#opts = opts;
    const timeouts =
      opts.commandTimeoutMs === undefined ? {} : answerTimeouts(opts.commandTimeoutMs + ((opts.ackReplicas ?? 0) > 0 ? (opts.ackTimeoutMs ?? 1000) : 0));
    this.#redis = createRedis(opts.url, { maxRetriesPerRequest: 2, connectionName: 'tickwire-portfolio-puts', ...timeouts });
    this.#redis.on('error', () => undefined); // reconnects; a failed command fails the PUT (503)
  }

  #key(user: string): string {
    return this.#opts.keyPrefix + encodeURIComponent(user) + ':put';
  }

  async last(user: string): Promise<PutRecord | undefined> {
    const s = await this.#redis.get(this.#key(user));
    return s === null ? undefined : parseRecord(s);
  }

  async put(user: string, rec: PutRecord): Promise<void> {
    await this.#redis.set(this.#key(user), JSON.stringify(rec));
    await this.#replicated();
  }

  async restore(user: string, prev: PutRecord | undefined): Promise<void> {
    if (prev) await this.#redis.set(this.#key(user), JSON.stringify(prev));
    else await this.#redis.del(this.#key(user));
    await this.#replicated();
  }

  /** with redis.ackReplicas, as an append of the log: the write counts once replicas have it */
  async #replicated(): Promise<void> {
    const want = this.#opts.ackReplicas ?? 0;
    if (want === 0) return;
    const ms = this.#opts.ackTimeoutMs ?? 1000;
    const got = await this.#redis.wait(want, ms);
    if (got < want) {
      throw new TickwireError(
        'EXEC_NOT_REPLICATED',
        `positions record stored on the Redis primary but only ${got} of ${want} replicas confirmed it within ${ms} ms`,
      );
    }
  }

  async close(): Promise<void> {
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}

export interface JetStreamPutRecordsOptions {
  /** portfolio.putStream */
  stream: string;
  /** executions.replicas: as durable as the log */
  replicas: number;
  /** subject prefix (default `pf.put.`; tests sharing a server give each their own) */
  prefix?: string;
}

/**
 * NATS mode: a stream of its own over `pf.put.<user>` (the user escaped as in every private
 * subject), one message per user (the last PUT), file storage, the executions' replicas, no age
 * or count limit but that one. A publish is acknowledged once stored by a quorum of the replicas;
 * reads ask the stream leader (STREAM.MSG.GET, last message by subject), never a replica that may
 * lag, so a record acknowledged is a record read.
 */
export class JetStreamPutRecords implements PutRecords {
  readonly kind = 'jetstream' as const;
  readonly #jsm: JetStreamManager;
  readonly #js: JetStreamClient;
  readonly #opts: JetStreamPutRecordsOptions;
  readonly #prefix: string;

  private constructor(jsm: JetStreamManager, js: JetStreamClient, opts: JetStreamPutRecordsOptions) {
    this.#jsm = jsm;
    this.#js = js;
    this.#opts = opts;
    this.#prefix = opts.prefix ?? PF_PUT_PREFIX;
  }

  /**
   * Create or update the stream (the executions log's manager and client: its connection). A
   * request that times out or finds JetStream temporarily unavailable (a cluster electing its
   * leader) is tried again as the log's open does (retryTransient).
   */
  static async open(jsm: JetStreamManager, js: JetStreamClient, opts: JetStreamPutRecordsOptions): Promise<JetStreamPutRecords> {
    await retryTransient(() =>
      ensureStream(jsm, {
        name: opts.stream,
        subjects: [(opts.prefix ?? PF_PUT_PREFIX) + '>'],
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        max_msgs_per_subject: 1,
        num_replicas: opts.replicas,
      }),
    );
    return new JetStreamPutRecords(jsm, js, opts);
  }

  #subject(user: string): string {
    return this.#prefix + escapeSubjectToken(user);
  }

  async last(user: string): Promise<PutRecord | undefined> {
    const m = await this.#jsm.streams.getMessage(this.#opts.stream, { last_by_subj: this.#subject(user) });
    return m ? parseRecord(m.string()) : undefined;
  }

  async put(user: string, rec: PutRecord): Promise<void> {
    await this.#js.publish(this.#subject(user), JSON.stringify(rec), { expect: { streamName: this.#opts.stream } });
  }

  async restore(user: string, prev: PutRecord | undefined): Promise<void> {
    if (prev) await this.put(user, prev);
    else await this.#jsm.streams.purge(this.#opts.stream, { filter: this.#subject(user) });
  }

  async close(): Promise<void> {}
}
