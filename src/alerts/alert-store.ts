import type { Redis } from 'ioredis';
import { HEARTBEAT_MS } from '../store/batched-writer.js';
import type { StoreRedisTimes } from '../store/batched-writer.js';
import { answerTimeouts, createRedis, keepAlive } from '../store/redis-connection.js';
import type { AlertChanges, AlertFiring, StoredAlert, StreamMark, WindowMark } from './alert-engine.js';
import type { StoredWindow, WindowDelta } from './rolling-window.js';

/** Everything an alert service needs to resume after a restart. */
export interface AlertSnapshot {
  /** rules with their evaluation state */
  alerts: StoredAlert[];
  /** last value of each watched stream at the last commit */
  marks: StreamMark[];
  /** firings committed but not acknowledged as delivered: deliver them again (same ids) */
  outbox: AlertFiring[];
  /** the percent-change windows' prices at the last commit (every entry, in segments) */
  windows?: StoredWindow[];
}

/**
 * Where alert rules, their state and undelivered firings live. A commit is atomic: it holds the
 * rule states, the stream values they were computed against and the firings of the same ticks,
 * so a restart resumes from one consistent cut: a rule that fired is not fired again (its state
 * says so), a crossing that happens across the restart is seen (the stream's stored value is the
 * `previous`), and a firing committed but not yet delivered is delivered from the outbox.
 *
 * Memory in the embedded mode; Redis when REDIS_URL is set. One alert service writes.
 */
export interface AlertStore {
  readonly kind: 'memory' | 'redis';
  load(): Promise<AlertSnapshot>;
  /** Apply a batch atomically: deletes first, then upserts, marks, and firings into the outbox. */
  commit(changes: AlertChanges): Promise<void>;
  /** Firings delivered: drop them from the outbox. */
  ack(firingIds: readonly string[]): Promise<void>;
  /**
   * The gateways' `auth.delayMs` that the rules of this store were accepted under (the delayed
   * store's only: docs/alerts.md, Entitlements), or undefined when none was recorded.
   */
  readDelay(): Promise<number | undefined>;
  writeDelay(ms: number): Promise<void>;
  /**
   * The entitlements a user last connected with, as the gateways reported them (an
   * EntitlementGrant as JSON text; the real-time store's only: docs/alerts.md, Entitlements), or
   * undefined when none was reported.
   */
  readAccess(user: string): Promise<string | undefined>;
  writeAccess(user: string, grant: string): Promise<void>;
  close(): Promise<void>;
}

/** Keeps JSON text, not objects, so that what it returns is exactly what Redis would. */
export class MemoryAlertStore implements AlertStore {
  readonly kind = 'memory' as const;
  readonly #rules = new Map<string, string>();
  readonly #marks = new Map<string, string>();
  readonly #outbox = new Map<string, string>();
  readonly #windows = new Map<string, string>();
  readonly #segments = new Map<string, Map<string, string>>();

  async load(): Promise<AlertSnapshot> {
    return {
      alerts: [...this.#rules.values()].map((s) => JSON.parse(s) as StoredAlert),
      marks: [...this.#marks].map(([stream, v]) => ({ stream, value: Number(v) })),
      outbox: [...this.#outbox.values()].map((s) => JSON.parse(s) as AlertFiring),
      windows: [...this.#windows].map(([window, head]) => ({
        window,
        head: JSON.parse(head) as StoredWindow['head'],
        segments: Object.fromEntries([...(this.#segments.get(window) ?? [])].map(([f, v]) => [f, JSON.parse(v) as number[]])),
      })),
    };
  }

  async commit(c: AlertChanges): Promise<void> {
    for (const id of c.deletes) this.#rules.delete(id);
    for (const a of c.upserts) this.#rules.set(a.rule.id, JSON.stringify(a));
    for (const m of c.marks) this.#marks.set(m.stream, String(m.value));
    for (const f of c.firings) this.#outbox.set(f.id, JSON.stringify(f));
    for (const [key, d] of windowDeltas(c.windows)) {
      if (!d || d.reset) this.#segments.delete(key);
      if (!d) {
        this.#windows.delete(key);
        continue;
      }
      this.#windows.set(key, JSON.stringify(d.head));
      let segs = this.#segments.get(key);
      if (!segs) this.#segments.set(key, (segs = new Map()));
      for (const f of d.drop) segs.delete(f);
      for (const [f, e] of d.put) segs.set(f, JSON.stringify(e));
    }
  }

  async ack(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.#outbox.delete(id);
  }

  #delay: number | undefined;
  async readDelay(): Promise<number | undefined> {
    return this.#delay;
  }

  async writeDelay(ms: number): Promise<void> {
    this.#delay = ms;
  }

  readonly #access = new Map<string, string>();
  async readAccess(user: string): Promise<string | undefined> {
    return this.#access.get(user);
  }

  async writeAccess(user: string, grant: string): Promise<void> {
    this.#access.set(user, grant);
  }

  async close(): Promise<void> {}
}

/** each window's delta, read once, now (a commit reads them before the engine sees another tick) */
function windowDeltas(marks: readonly WindowMark[] | undefined): [string, WindowDelta | null][] {
  return (marks ?? []).map((w) => [w.window, w.source ? w.source.window.delta(w.source.since) : null]);
}

/**
 * Four hashes: `<prefix>rules` (field = rule id, value = {rule, state} as JSON), `<prefix>marks`
 * (field = stream, value = number as text: JS number text round-trips exactly),
 * `<prefix>outbox` (field = firing id) and `<prefix>windows` (field = percent-change window,
 * value = its WindowHead as JSON), and one hash per window, `<prefix>window:<window>`, of its
 * segments (field `min:<n>` or `max:<n>`, value JSON). A commit is one MULTI/EXEC transaction.
 * `<prefix>delay`: the gateways' delay the rules were accepted under (readDelay), ms as text.
 * `<prefix>access`: hash of each user's last reported entitlements (field = user, value = JSON).
 */
export class RedisAlertStore implements AlertStore {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;
  readonly #prefix: string;

  readonly #stopKeepAlive: () => void;

  /** `times`: config `redis.commandTimeoutMs` and `redis.pingIntervalMs` (unset: 5 s and 2 s) */
  constructor(url: string, prefix: string, times: StoreRedisTimes = {}) {
    this.#prefix = prefix;
    // through the one Redis factory, so a redis+sentinel:// URL follows a failover here too
    this.#redis = createRedis(url, { maxRetriesPerRequest: 3, connectionName: 'tickwire-alerts', ...answerTimeouts(times.commandTimeoutMs) });
    this.#redis.on('error', () => undefined);
    this.#stopKeepAlive = keepAlive(this.#redis, times.pingIntervalMs ?? HEARTBEAT_MS);
  }

  get ready(): boolean {
    return this.#redis.status === 'ready';
  }

  async load(): Promise<AlertSnapshot> {
    const [rules, marks, outbox, windows] = await Promise.all([
      this.#redis.hgetall(this.#prefix + 'rules'),
      this.#redis.hgetall(this.#prefix + 'marks'),
      this.#redis.hgetall(this.#prefix + 'outbox'),
      this.#redis.hgetall(this.#prefix + 'windows'),
    ]);
    const keys = Object.keys(windows);
    const segs = keys.length > 0 ? await this.#redis.pipeline(keys.map((k) => ['hgetall', this.#segmentsKey(k)])).exec() : [];
    return {
      alerts: Object.values(rules).map((s) => JSON.parse(s) as StoredAlert),
      marks: Object.entries(marks).map(([stream, v]) => ({ stream, value: Number(v) })),
      outbox: Object.values(outbox).map((s) => JSON.parse(s) as AlertFiring),
      windows: keys.map((window, i) => {
        const [err, fields] = segs?.[i] ?? [new Error('no answer')];
        if (err) throw new Error(`alert store load failed: segments of window ${window}: ${err.message}`);
        return {
          window,
          head: JSON.parse(windows[window]!) as StoredWindow['head'],
          segments: Object.fromEntries(Object.entries(fields as Record<string, string>).map(([f, v]) => [f, JSON.parse(v) as number[]])),
        };
      }),
    };
  }

  async commit(c: AlertChanges): Promise<void> {
    const windows = windowDeltas(c.windows);
    if (c.deletes.length + c.upserts.length + c.marks.length + c.firings.length + windows.length === 0) return;
    const m = this.#redis.multi();
    if (c.deletes.length > 0) m.hdel(this.#prefix + 'rules', ...c.deletes);
    if (c.upserts.length > 0) m.hset(this.#prefix + 'rules', Object.fromEntries(c.upserts.map((a) => [a.rule.id, JSON.stringify(a)])));
    if (c.marks.length > 0) m.hset(this.#prefix + 'marks', Object.fromEntries(c.marks.map((x) => [x.stream, String(x.value)])));
    if (c.firings.length > 0) m.hset(this.#prefix + 'outbox', Object.fromEntries(c.firings.map((f) => [f.id, JSON.stringify(f)])));
    for (const [key, d] of windows) {
      if (!d || d.reset) m.del(this.#segmentsKey(key));
      if (!d) {
        m.hdel(this.#prefix + 'windows', key);
        continue;
      }
      if (!d.reset && d.drop.length > 0) m.hdel(this.#segmentsKey(key), ...d.drop);
      if (d.put.length > 0) m.hset(this.#segmentsKey(key), Object.fromEntries(d.put.map(([f, e]) => [f, JSON.stringify(e)])));
      m.hset(this.#prefix + 'windows', key, JSON.stringify(d.head));
    }
    const res = await m.exec();
    const failed = res?.find(([err]) => err);
    if (!res || failed) throw new Error(`alert store commit failed: ${failed?.[0]?.message ?? 'transaction aborted'}`);
  }

  #segmentsKey(window: string): string {
    return `${this.#prefix}window:${window}`;
  }

  async ack(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.#redis.hdel(this.#prefix + 'outbox', ...ids);
  }

  async readDelay(): Promise<number | undefined> {
    const v = await this.#redis.get(this.#prefix + 'delay');
    const ms = v === null ? NaN : Number(v);
    return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
  }

  async writeDelay(ms: number): Promise<void> {
    await this.#redis.set(this.#prefix + 'delay', String(ms));
  }

  async readAccess(user: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.#prefix + 'access', user)) ?? undefined;
  }

  async writeAccess(user: string, grant: string): Promise<void> {
    await this.#redis.hset(this.#prefix + 'access', user, grant);
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
