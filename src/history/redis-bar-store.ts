import type { Redis } from 'ioredis';
import { RedisScript } from '../store/redis-script.js';
import { BatchedWriter, closeStoreRedis, createStoreRedis } from '../store/batched-writer.js';
import type { StoreRedisTimes } from '../store/batched-writer.js';
import type { BarRange } from '../fanout/channels.js';
import type { BarStore, StoredBar } from './bar-store.js';
import { DEFAULT_KEEP_REVISIONS_MS, lowerBound, sliceRange, upsertSorted } from './bar-store.js';

/** How long a read waits for a connection that is not ready before it fails. */
const READ_WAIT_MS = 2000;

/** How often a reader checks the writers' keep time again (a feed process may start after it). */
const KEEP_CHECK_MS = 60_000;

/** The field of a stored member that holds when the bar was put (ms); removed before a bar is served. */
const AT = '_at';

/** A bar put and not written yet, with the earlier versions of it put since the last flush. */
interface Held {
  t: number;
  bar: StoredBar;
  at: number;
  /** versions of the same bar put before this one and not written, oldest first */
  older: { bar: StoredBar; at: number }[];
}

/**
 * Writes one bar (KEYS[1] the channel's set, KEYS[2] its revisions). ARGV: t, the member, `first`
 * (when the oldest version being written was put), the pruning horizon (replaced at or before
 * it: dropped), keep ms (0: no revisions), window, then pairs of (revision member, replaced at)
 * for the versions put and replaced before this flush. The bar stored for `t` moves to the
 * revisions, replaced at `first`, member `{"u":<until>,"b":<member>}` scored by `until`, so a
 * delayed read takes the revisions replaced after its `asOf` with one ZRANGEBYSCORE. The
 * revisions key expires `keep` ms after its last write: then every version in it is prunable.
 */
const PUT_SCRIPT = `
local keep = tonumber(ARGV[5])
if keep > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
  for i = 1, #old do
    redis.call('ZADD', KEYS[2], ARGV[3], '{"u":' .. ARGV[3] .. ',"b":' .. old[i] .. '}')
  end
  for i = 7, #ARGV, 2 do
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], keep) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[6]) + 1))
`;

const PUT = new RedisScript(PUT_SCRIPT, 2);

/** The newest of `older` (oldest first) put at or before `asOf`. */
function versionAt(older: readonly { bar: StoredBar; at: number }[], asOf: number): StoredBar | undefined {
  for (let i = older.length - 1; i >= 0; i--) if (older[i]!.at <= asOf) return older[i]!.bar;
  return undefined;
}

function memberOf(bar: StoredBar, at: number): string {
  return JSON.stringify({ ...bar, [AT]: at });
}

/** A stored member: the bar as served, and when it was put (undefined: written before revisions were kept). */
function parseMember(member: string): { bar: StoredBar; at: number | undefined } {
  const o = JSON.parse(member) as StoredBar & { [AT]?: number };
  const at = o[AT];
  delete o[AT];
  return { bar: o, at };
}

export interface RedisBarStoreOptions extends StoreRedisTimes {
  /** redis://… or redis+sentinel://… (src/core/redis-url.ts) */
  url: string;
  /** bars kept per channel */
  windowBars: number;
  /** how long a replaced bar version is kept for delayed reads, ms (the longest `auth.delayMs`; 0: none) */
  keepRevisionsMs?: number;
  now?: () => number;
  /** prepended to the channel name: `tickwire:bars:` -> `tickwire:bars:bar.1m:AAPL` */
  keyPrefix?: string;
  /** how often pending bars are written, ms */
  flushMs?: number;
  /** bars waiting for a flush, across all channels; beyond it new bars are dropped (counted) while Redis is away */
  maxPendingBars?: number;
  log?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
  /** client name shown by CLIENT LIST */
  name?: string;
  /** this process writes bars (a feed process): record `keepRevisionsMs` in Redis (`keepKey`) on each connect */
  recordKeep?: boolean;
  /**
   * this process reads bars this much behind (a gateway's `auth.delayMs`): read the writers'
   * recorded keep time on each connect and every `keepCheckMs`, and warn when it is shorter
   */
  readDelayMs?: number;
  /** how often a reader checks the recorded keep time again, ms */
  keepCheckMs?: number;
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
  readonly #keepMs: number;
  readonly #now: () => number;
  readonly #maxPending: number;
  /** channel -> bars not written yet, sorted by t */
  #pending = new Map<string, Held[]>();
  #pendingCount = 0;
  readonly #writer: BatchedWriter<Map<string, Held[]>>;
  #closed = false;
  readonly #recordKeep: boolean;
  readonly #readDelayMs: number;
  #keepTimer: NodeJS.Timeout | undefined;
  #warnedKeep: number | undefined;
  /** the keep time the writers recorded, ms (undefined: none recorded, or this process does not read delayed) */
  writerKeepMs: number | undefined;

  constructor(opts: RedisBarStoreOptions) {
    this.keyPrefix = opts.keyPrefix ?? 'tickwire:bars:';
    this.#window = Math.max(1, opts.windowBars);
    this.#keepMs = Math.max(0, opts.keepRevisionsMs ?? DEFAULT_KEEP_REVISIONS_MS);
    this.#now = opts.now ?? ((): number => Date.now());
    this.#maxPending = opts.maxPendingBars ?? 100_000;
    const log = opts.log;
    this.#recordKeep = opts.recordKeep ?? false;
    this.#readDelayMs = Math.max(0, opts.readDelayMs ?? 0);
    let wasReady = false;
    this.redis = createStoreRedis(opts.url, opts.name ?? 'tickwire-bars', opts.commandTimeoutMs);
    this.redis.on('ready', () => {
      wasReady = true;
      log?.info({ store: 'redis-bars' }, 'redis bar store connected');
      void this.#checkKeep(log);
    });
    if (this.#readDelayMs > 0) {
      this.#keepTimer = setInterval(() => {
        if (this.ready) void this.#checkKeep(log);
      }, opts.keepCheckMs ?? KEEP_CHECK_MS);
      this.#keepTimer.unref();
    }
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
        PUT.load(multi);
        for (const [channel, held] of batch) {
          const keys = [this.keyPrefix + channel, this.revisionsKey(channel)];
          for (const h of held) {
            const first = h.older[0]?.at ?? h.at;
            const revs: (string | number)[] = [];
            if (this.#keepMs > 0) {
              h.older.forEach((o, i) => {
                const until = h.older[i + 1]?.at ?? h.at;
                revs.push(`{"u":${until},"b":${memberOf(o.bar, o.at)}}`, until);
              });
            }
            PUT.queue(multi, ...keys, h.t, memberOf(h.bar, h.at), first, h.at - this.#keepMs, this.#keepMs, this.#window, ...revs);
          }
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
            const newer = held[i]?.t === bar.t ? held[i] : undefined;
            if (newer) {
              // the failed versions came first: they are revisions of the newer one
              if (this.#keepMs > 0) newer.older = [...bar.older, { bar: bar.bar, at: bar.at }, ...newer.older];
              continue;
            }
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
    const at = this.#now();
    const i = lowerBound(bars, bar.t);
    const old = bars[i]?.t === bar.t ? bars[i] : undefined;
    // a version replaced before it was written is still a revision (a delayed read may need it)
    const older = old && this.#keepMs > 0 ? [...old.older, { bar: old.bar, at: old.at }] : [];
    const before = bars.length;
    upsertSorted(bars, { t: bar.t, bar, at, older });
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

  /** The key where the writers record how long they keep replaced versions (ms). */
  get keepKey(): string {
    return `${this.keyPrefix}keep-revisions-ms`;
  }

  /**
   * Writers keep replaced versions for their own `auth.delayMs`; a gateway reads them at its own.
   * A gateway further behind than the writers keep can only leave a replaced bar out of a delayed
   * read (never show a newer one), so this is a warning, not an error (docs/operations.md).
   */
  async #checkKeep(log: RedisBarStoreOptions['log']): Promise<void> {
    try {
      if (this.#recordKeep) await this.redis.set(this.keepKey, String(this.#keepMs));
      if (this.#readDelayMs === 0) return;
      const v = await this.redis.get(this.keepKey);
      const keep = v === null ? NaN : Number(v);
      if (!Number.isFinite(keep)) return;
      this.writerKeepMs = keep;
      if (keep >= this.#readDelayMs || keep === this.#warnedKeep) return;
      this.#warnedKeep = keep;
      log?.warn(
        { store: 'redis-bars', writerKeepMs: keep, delayMs: this.#readDelayMs },
        "bar history: the feed processes keep replaced bar versions for less than this gateway's auth.delayMs; a delayed bar read leaves out a bar replaced in between (it never shows a newer one). Run the feed processes with auth.delayMs (TICKWIRE_AUTH_DELAY_MS) at least the gateways' longest",
      );
    } catch {
      // not connected: checked again on the next connect
    }
  }

  /** The key of a channel's replaced bar versions. */
  revisionsKey(channel: string): string {
    return `${this.keyPrefix}rev:${channel}`;
  }

  async range(channel: string, q: BarRange): Promise<StoredBar[]> {
    if (q.limit <= 0) return [];
    // connecting (start-up, or back from an outage): wait a little rather than fail at once
    if (!this.ready && !this.#closed) await this.waitReady(READ_WAIT_MS);
    const asOf = q.asOf;
    let bars: StoredBar[];
    try {
      bars = asOf === undefined ? await this.#read(channel, q) : await this.#readAsOf(channel, q, asOf);
    } catch (err) {
      this.stats.errors++;
      throw err;
    }
    // bars of this process not written yet (or in the flush in flight) replace or join them
    for (const held of [this.#writer.writing?.get(channel), this.#pending.get(channel)]) {
      if (!held) continue;
      for (const h of sliceRange(held, q)) {
        const bar = asOf === undefined || h.at <= asOf ? h.bar : versionAt(h.older, asOf);
        if (bar) upsertSorted(bars, bar);
      }
    }
    return bars.length > q.limit ? bars.slice(bars.length - q.limit) : bars;
  }

  async #read(channel: string, q: BarRange): Promise<StoredBar[]> {
    const max = q.to === undefined ? '+inf' : `(${q.to}`;
    const min = q.from === undefined ? '-inf' : String(q.from);
    const members = await this.redis.zrevrangebyscore(this.keyPrefix + channel, max, min, 'LIMIT', 0, q.limit);
    const bars: StoredBar[] = [];
    for (let i = members.length - 1; i >= 0; i--) bars.push(parseMember(members[i]!).bar);
    return bars;
  }

  /**
   * The newest `limit` bars of the range as they were at `asOf`: a bar put after it is its
   * revision current then (replaced after `asOf`: the revisions scored above it), or left out,
   * and older bars are read in its place (rare: a delayed read's `to` is capped at bars that ended
   * the delay ago, so only a bar put late, or within its close, is left out).
   */
  async #readAsOf(channel: string, q: BarRange, asOf: number): Promise<StoredBar[]> {
    const out: StoredBar[] = [];
    let to = q.to;
    for (;;) {
      const want = q.limit - out.length;
      const max = to === undefined ? '+inf' : `(${to}`;
      const min = q.from === undefined ? '-inf' : String(q.from);
      // in one transaction: a write between two reads would move a version from the set to the
      // revisions after the revisions were read (that bar would be missing)
      const replies = await this.redis
        .multi()
        .zrevrangebyscore(this.keyPrefix + channel, max, min, 'LIMIT', 0, want)
        .zrangebyscore(this.revisionsKey(channel), `(${asOf}`, '+inf')
        .exec();
      if (!replies) throw new Error('bar store read: transaction aborted');
      for (const [err] of replies) if (err) throw err;
      const members = replies[0]![1] as string[];
      const then = new Map<number, StoredBar>();
      for (const m of replies[1]![1] as string[]) {
        const rev = JSON.parse(m) as { u: number; b: StoredBar & { [AT]?: number } };
        const at = rev.b[AT];
        if (at !== undefined && at <= asOf && asOf < rev.u) {
          delete rev.b[AT];
          then.set(rev.b.t, rev.b);
        }
      }
      for (const m of members) {
        const { bar, at } = parseMember(m);
        // a bar written before put times were kept has none: it is served (the caller caps `to`)
        const b = at === undefined || at <= asOf ? bar : then.get(bar.t);
        if (b) out.push(b);
        to = bar.t;
      }
      if (members.length < want || out.length >= q.limit) break;
    }
    return out.reverse();
  }

  /** Flush what is pending (when connected), then disconnect. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearInterval(this.#keepTimer);
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
