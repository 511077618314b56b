import type { Bus, Unsubscribe } from '../bus/bus.js';
import { marketSubject } from '../bus/subjects.js';
import { decodeTick, encodeBusMessage } from '../codec/tick-codec.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { Tick } from '../core/schema.js';
import { nsToMs } from '../core/time.js';
import { calendarOf } from '../core/trading-day.js';
import type { TradingCalendar } from '../core/trading-day.js';
import type { EventLog, StoredEvent } from '../executions/event-log.js';
import type { PositionsInput } from '../executions/schemas.js';
import { PF_KICK_PREFIX, PF_KICK_RENEW, portfolioSubject, userOf } from '../bus/private-subjects.js';
import type { LastValueStore } from '../store/last-value-store.js';
import { PriceBook, TickDelay } from './price-book.js';
import type { PortfolioApi, PositionsView } from './portfolio-api.js';
import { PortfolioRequestError } from './portfolio-api.js';
import type { PositionStore } from './position-store.js';
import type { PositionBook } from './positions.js';
import { MemoryPutRecords, newPutId } from './put-records.js';
import type { PutRecord, PutRecords } from './put-records.js';
import { MAX_AMOUNT, MAX_QTY, roundQty } from '../core/numbers.js';
import { applyExecution, emptyBook, tradingDay } from './positions.js';
import type { DelayedLine, PortfolioPayload } from './valuation.js';
import { valuate } from './valuation.js';
import { clean } from '../core/numbers.js';

export interface PortfolioServiceOptions {
  bus: Bus;
  registry: InstrumentRegistry;
  store: PositionStore;
  /** the executions log: followed for position updates, asked for heads on PUT */
  events: EventLog;
  /**
   * where each PUT is recorded, with the log position it is valid from: beside the log, as durable
   * as it (src/portfolio/put-records.ts; src/app/private.ts picks it by the log). Unset: memory,
   * for as long as the process runs.
   */
  puts?: PutRecords;
  /** `idleMs` (evict idle books) defaults to DEFAULT_IDLE_MS; `putStream` is the composition root's (`puts`) */
  config: Omit<Config['portfolio'], 'idleMs' | 'putStream'> & { idleMs?: number };
  /** snapshots to price symbols before their first live tick */
  lastValues?: LastValueStore;
  /**
   * `auth.delayMs`: each valuation also carries the positions valued at the prices of this long
   * ago (`dv`), which a gateway shows to a connection entitled to delayed data only
   * (src/fanout/portfolio-view.ts); 0 or unset: no `dv`
   */
  delayMs?: number;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/** events read per request when catching up at start */
const CATCH_UP_BATCH = 500;
/** books saved at once (ioredis pipelines them) */
const SAVE_BATCH = 200;
/** after a failed save, the next attempt (the store's own command timeout bounds each one) */
const SAVE_RETRY_MS = 1000;
/** a book nobody used for this long leaves memory (portfolio.idleMs) */
const DEFAULT_IDLE_MS = 3_600_000;

interface Parked {
  /** log position of the first execution waiting (Infinity: none) */
  first: number;
  events: [StoredEvent, number][];
  /** a gateway asked for the valuation: published once the book is read */
  kick: boolean;
  /** the read under way */
  loaded: Promise<void> | undefined;
  failed?: boolean;
  retry?: NodeJS.Timeout | undefined;
}

/**
 * Positions and live valuation. Executions from the log update quantity and cost basis (once
 * each: a book remembers the last sequence applied); prices come from the bus (ticker and quote
 * subjects of the symbols held, and the forex pairs their currencies need); each user's
 * `portfolio` payload is published on `pf.val.<user>` at most every `publishMs`, and only when it
 * changed (or a gateway asked, with `pf.kick.<user>`, for a new subscriber).
 */
export class PortfolioService implements PortfolioApi {
  readonly stats = { applied: 0, skipped: 0, published: 0, unchanged: 0, saveFailures: 0, evicted: 0, incomplete: 0, rebuiltFromPut: 0 };
  readonly #o: PortfolioServiceOptions;
  readonly #puts: PutRecords;
  /** user -> the PUT under way (its record written, its book not saved yet) */
  readonly #putting = new Map<string, Promise<unknown>>();
  /**
   * PUTs refused after their record was written (it is taken back): a book read back meanwhile
   * (#load, getPositions) may have read that record, and is read again.
   */
  #putsTakenBack = 0;
  readonly #books = new Map<string, PositionBook>();
  /**
   * user -> when the book was last used (an execution, a PUT or GET, a gateway's kick or renewal
   * of a watched portfolio), oldest first: books idle for `idleMs` leave memory (see #evictIdle)
   */
  readonly #used = new Map<string, number>();
  /**
   * Users whose book is being read back from the store (evicted, or not seen yet), or could not
   * be (the store is down): their executions wait here in order, applied once the book is read;
   * `first` holds the checkpoint below them.
   */
  readonly #parked = new Map<string, Parked>();
  #evictTimer: NodeJS.Timeout | undefined;
  readonly #prices: PriceBook;
  /** the same prices `delayMs` later, for delayed views (undefined: delayMs 0) */
  readonly #delayed: { prices: PriceBook; ticks: TickDelay } | undefined;
  /** symbol -> users who need its price; symbol -> bus subscriptions */
  readonly #needs = new Map<string, Set<string>>();
  readonly #userSymbols = new Map<string, Set<string>>();
  readonly #subs = new Map<string, Unsubscribe[]>();
  readonly #dirty = new Set<string>();
  readonly #forced = new Set<string>();
  readonly #lastSent = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();
  /**
   * Users whose book in memory is ahead of the store -> the log position of the first execution
   * applied since its last save. Executions are applied in memory and saved behind (never
   * awaited by the next one): while the store is down the valuation keeps up, and the checkpoint
   * stays below every unsaved execution, so a restart replays (JetStream) or reads (Redis log
   * catch-up) what was never saved, each execution once (a book skips seqs it has).
   */
  readonly #unsaved = new Map<string, number>();
  /** the same for the books being saved now (the checkpoint waits for them too) */
  readonly #saving = new Map<string, number>();
  #saveRetry: NodeJS.Timeout | undefined;
  /** the last save failed (a PUT, which has no log to be rebuilt from, is refused meanwhile) */
  #storeDown = false;
  #checkpoint: number | undefined;
  #checkpointSaved: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** when #publishDue last looked for trading days that started (once a minute) */
  #dayCheckAt = Date.now();
  #unfollow: Unsubscribe | undefined;
  #unkick: Unsubscribe | undefined;
  #closed = false;

  constructor(opts: PortfolioServiceOptions) {
    this.#o = opts;
    this.#puts = opts.puts ?? new MemoryPutRecords();
    const dayOf = (sym: string, ms: number): number => this.#dayOf(sym, ms);
    this.#prices = new PriceBook(opts.registry, dayOf);
    const delayMs = opts.delayMs ?? 0;
    // delayed prices move in steps of a publish interval, at least a second (bounds the held slots)
    if (delayMs > 0) this.#delayed = { prices: new PriceBook(opts.registry, dayOf), ticks: new TickDelay(delayMs, Math.max(1000, opts.config.publishMs)) };
  }

  /** a symbol's trading days (its ticker's day) */
  #calendar(sym: string): TradingCalendar {
    return calendarOf(this.#o.registry.get(sym));
  }

  #dayOf(sym: string, ms: number): number {
    return tradingDay(ms, this.#calendar(sym));
  }

  /**
   * Books are not read here: each is read from the store when first needed (an execution, a
   * request, a gateway's subscriber: #bring), so a start costs the same whatever the number of
   * users ever stored (bench/portfolio-start.ts).
   */
  async start(): Promise<void> {
    this.#checkpoint = await this.#o.store.checkpoint();
    this.#checkpointSaved = this.#checkpoint;
    this.#unfollow = this.#o.events.follow((user, ev, pos) => this.#enqueue(() => this.#apply(user, ev, pos)), { after: this.#checkpoint ?? 0 });
    this.#unkick = this.#o.bus.subscribe(PF_KICK_PREFIX + '*', (subject, payload) => {
      const user = userOf(subject, PF_KICK_PREFIX);
      if (user === undefined) return;
      if (payload.length === 1 && payload[0] === PF_KICK_RENEW) this.#renew(user);
      else this.kick(user);
    });
    this.#timer = setInterval(() => this.#publishDue(), this.#o.config.publishMs);
    this.#timer.unref();
    const idle = this.#idleMs;
    if (idle > 0) {
      this.#evictTimer = setInterval(() => void this.#enqueue(async () => this.#evictIdle(Date.now())), Math.max(20, Math.min(60_000, idle / 4)));
      this.#evictTimer.unref();
    }
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch((err: unknown) => this.#o.log?.warn({ err }, 'portfolio update failed'));
    return next;
  }

  get #idleMs(): number {
    return this.#o.config.idleMs ?? DEFAULT_IDLE_MS;
  }

  /** Books held in memory now (the rest are in the store, read back on use). */
  get heldBooks(): number {
    return this.#books.size;
  }

  #touch(user: string): void {
    this.#used.delete(user);
    this.#used.set(user, Date.now());
  }

  /**
   * Bring a book not in memory back from the store (an evicted user, or one never seen: the store
   * has none), outside the queue: a store that hangs never holds up another user's executions.
   * The user's executions meanwhile wait in `#parked`, in order, applied once the book is read.
   */
  #bring(user: string): Parked {
    let p = this.#parked.get(user);
    if (!p) {
      this.#parked.set(user, (p = { first: Infinity, events: [], kick: false, loaded: undefined }));
      p.loaded = this.#load(user, p);
    }
    return p;
  }

  async #load(user: string, p: Parked): Promise<void> {
    let stored: PositionBook | undefined;
    let last = 0;
    let record: PutRecord | undefined;
    const takenBack = this.#putsTakenBack;
    try {
      // (a book held back in memory, #holdBack, is not read again)
      if (!this.#books.has(user)) [stored, last, record] = await Promise.all([this.#o.store.get(user), this.#logHead(user), this.#puts.last(user)]);
    } catch (err) {
      if (!p.failed) this.#o.log?.warn({ err, user }, 'portfolio: a book could not be read back from the position store; its executions wait');
      p.failed = true;
      this.#retryLoad(user, p);
      return;
    }
    await this.#enqueue(async () => {
      if (this.#parked.get(user) !== p || this.#closed) return; // a PUT set the book meanwhile
      if (this.#putsTakenBack !== takenBack) {
        // a PUT failed meanwhile: what was read may be its record, taken back since
        p.loaded = this.#load(user, p);
        return;
      }
      this.#parked.delete(user);
      if (!this.#books.has(user)) {
        // The log's events past the stored book are read first: the waiting ones, and any seen
        // twice, are skipped by seq. The Redis and memory logs follow from now: events stored
        // after the book's last save (a crash between an append and its save). JetStream replays
        // from the checkpoint, which stays below every unsaved book, but a store that lost the book
        // (a key dropped, a Redis flushed) or holds an older one (restored from a snapshot) while
        // the checkpoint is past the user's executions would never see them again
        // (test/private/portfolio-lost-book.test.ts). With no book stored, from the log's start:
        // the user's first book may never have been saved
        // (test/private/portfolio-unsaved-new-user.test.ts); a user without events gets no book.
        // What the log no longer holds marks the book incomplete (#catchUp).
        // A book set by a PUT is built on the PUT's record when the store lost it or holds one
        // from before the PUT (#base): the log has no trace of a PUT.
        const { book, rebuilt } = this.#base(user, stored, record);
        const base = book.seq;
        // the waiting executions continue the book: they need no read (a gap after them is read by #applyHeld)
        const next = p.events.reduce((m, [ev]) => Math.min(m, ev.seq), Infinity);
        if (last > base && next !== base + 1) {
          try {
            await this.#catchUp(book, Infinity, last);
          } catch (err) {
            // the book stays out of memory, behind the log: read back again later, its executions wait
            if (!p.failed) this.#o.log?.warn({ err, user }, 'portfolio: catch-up from the execution log failed; the book is read back again later');
            p.failed = true;
            this.#parked.set(user, p);
            this.#retryLoad(user, p);
            return;
          }
        }
        if (stored || rebuilt || book.seq > 0) {
          this.#books.set(user, book);
          await this.#track(book);
          if (rebuilt) this.stats.rebuiltFromPut++;
          if (book.seq > base || rebuilt) {
            // read again from the log or the PUT record: saved (the store is repaired), published
            this.#markUnsaved(user, this.#checkpoint ?? 0);
            this.#dirty.add(user);
          }
        }
      }
      this.#touch(user);
      for (const [ev, position] of p.events) {
        // one held back again (#holdBack): the rest wait behind it, in order
        const again = this.#parked.get(user);
        if (again) again.events.push([ev, position]);
        else await this.#applyHeld(user, ev, position);
      }
      if (p.kick) {
        this.#forced.add(user);
        this.#dirty.add(user);
      }
    }).catch(() => undefined); // logged by #enqueue
  }

  async #apply(user: string, ev: StoredEvent, position: number): Promise<void> {
    if (this.#closed) return;
    if (this.#held(user)) return this.#applyHeld(user, ev, position);
    // never applied to an empty book in place of the stored one: waits for the book
    this.#park(this.#bring(user), ev, position);
  }

  /** `ev` waits with `p`'s executions, in order, the checkpoint below it. */
  #park(p: Parked, ev: StoredEvent, position: number): void {
    p.events.push([ev, position]);
    p.first = Math.min(p.first, position);
    this.#checkpoint = Math.max(this.#checkpoint ?? 0, position);
  }

  /** The user's book is in memory and up to date (not read back, nor held back behind the log). */
  #held(user: string): boolean {
    return this.#books.has(user) && !this.#parked.has(user);
  }

  async #applyHeld(user: string, ev: StoredEvent, position: number): Promise<void> {
    const book = this.#books.get(user) ?? emptyBook(user, this.#o.config.baseCurrency);
    // the event is not the one after the book's: read the ones between from the log first. For a
    // new book they were stored but never applied (a crash before the first save), or this log
    // replay starts late. For a held book they were stored and are announced late: the Redis log
    // announces an append whose reply was lost (Redis stalled past its command timeout, replicas
    // short of redis.ackReplicas) only when it is retried, after the user's later executions;
    // taken as applied up to this seq, it would be skipped when it comes
    // (test/private/portfolio-late-event.test.ts). A hole the log cannot fill (retention, a log
    // that lost data) marks the book incomplete.
    // A failed read (a request timing out) holds this event back with the user's next ones, to be
    // applied in order once the log answers (#holdBack): before, it was dropped, and the book
    // stayed without it until the user's next execution
    // (test/private/portfolio-lost-book.test.ts).
    if (ev.seq > book.seq + 1) {
      try {
        await this.#catchUp(book, ev.seq);
      } catch (err) {
        // (a book not in memory yet is read back again, #load; one in memory is caught up again)
        return this.#holdBack(user, ev, position, err);
      }
    }
    this.#touch(user);
    if (ev.seq <= book.seq) {
      this.stats.skipped++;
    } else {
      this.#applyOne(book, ev);
      this.#books.set(user, book);
      this.#markUnsaved(user, position);
      await this.#track(book);
      this.#dirty.add(user);
      this.stats.applied++;
    }
    this.#checkpoint = Math.max(this.#checkpoint ?? 0, position);
  }

  /**
   * An execution that could not be applied now (the log did not give the ones before it): it
   * waits in `#parked` with the user's next ones, in order, the checkpoint below it, and the
   * book's executions are read again every SAVE_RETRY_MS (#load). Meanwhile a GET is answered 503
   * (the book is behind), never with the book as it is.
   */
  #holdBack(user: string, ev: StoredEvent, position: number, err: unknown): void {
    let p = this.#parked.get(user);
    if (!p) {
      this.#o.log?.warn({ err, user }, 'portfolio: the executions before one could not be read from the log; it waits and is tried again');
      this.#parked.set(user, (p = { first: Infinity, events: [], kick: false, loaded: undefined, failed: true }));
      this.#retryLoad(user, p);
    }
    this.#park(p, ev, position);
  }

  #retryLoad(user: string, p: Parked): void {
    if (this.#closed) return;
    p.retry = setTimeout(() => {
      p.retry = undefined;
      if (this.#parked.get(user) === p) p.loaded = this.#load(user, p);
    }, SAVE_RETRY_MS);
    p.retry.unref();
  }

  /**
   * Evict the books nobody used for `idleMs` (oldest first, stops at the first recent one), unless
   * not saved yet: the book, its price needs and its last published value leave memory.
   */
  #evictIdle(now: number): void {
    const before = now - this.#idleMs;
    const keep: string[] = [];
    for (const [user, at] of this.#used) {
      if (at > before) break;
      if (this.#unsaved.has(user) || this.#saving.has(user) || this.#parked.has(user)) {
        keep.push(user);
        continue;
      }
      this.#used.delete(user);
      const book = this.#books.get(user);
      this.#books.delete(user);
      if (book) this.#untrack(user);
      this.#lastSent.delete(user);
      this.#dirty.delete(user);
      this.#forced.delete(user);
      this.stats.evicted++;
    }
    // unsaved ones are looked at again at the next sweep
    for (const user of keep) this.#touch(user);
  }

  /** A gateway still serves this user's portfolio: keep the book (read it back if evicted). */
  #renew(user: string): void {
    this.#touch(user);
    if (this.#books.has(user)) return;
    this.kick(user);
  }

  /** Users whose book is not saved yet (the store is down, or the save is under way). */
  get unsavedUsers(): number {
    let n = this.#unsaved.size;
    for (const user of this.#saving.keys()) if (!this.#unsaved.has(user)) n++;
    return n;
  }

  #markUnsaved(user: string, position: number): void {
    const first = this.#unsaved.get(user);
    if (first === undefined || position < first) this.#unsaved.set(user, position);
    this.#scheduleSave(0);
  }

  #scheduleSave(delayMs: number): void {
    if (this.#saving.size > 0 || this.#saveRetry || this.#closed) return;
    this.#saveRetry = setTimeout(() => {
      this.#saveRetry = undefined;
      void this.#saveUnsaved();
    }, delayMs);
    this.#saveRetry.unref();
  }

  /**
   * Save the unsaved books, SAVE_BATCH at a time, each as it is now (a store takes the book's state
   * at the call); a book changed during its save is marked again by that change. A failed save
   * keeps its user unsaved and is tried again SAVE_RETRY_MS later.
   */
  async #saveUnsaved(): Promise<void> {
    if (this.#saving.size > 0) return;
    let failed = false;
    try {
      while (this.#unsaved.size > 0 && !failed) {
        const batch: [string, number][] = [];
        for (const entry of this.#unsaved) {
          batch.push(entry);
          if (batch.length >= SAVE_BATCH) break;
        }
        for (const [user, position] of batch) {
          this.#unsaved.delete(user);
          this.#saving.set(user, position);
        }
        const results = await Promise.allSettled(
          batch.map(([user]) => {
            const book = this.#books.get(user);
            return book ? this.#o.store.save(book) : Promise.resolve();
          }),
        );
        for (const [user] of batch) this.#saving.delete(user);
        results.forEach((r, i) => {
          if (r.status === 'fulfilled') return;
          const [user, position] = batch[i]!;
          const later = this.#unsaved.get(user);
          this.#unsaved.set(user, later === undefined ? position : Math.min(position, later));
          this.stats.saveFailures++;
          if (!failed && !this.#storeDown) {
            this.#o.log?.warn({ err: r.reason, user }, 'portfolio: position store unavailable; executions are applied in memory and saved when it is back');
          }
          failed = true;
        });
      }
    } finally {
      this.#saving.clear();
    }
    if (failed) {
      this.#storeDown = true;
      this.#scheduleSave(SAVE_RETRY_MS);
    } else if (this.#storeDown) {
      this.#storeDown = false;
      this.#o.log?.info({}, 'portfolio: position store available again, books saved');
    }
    if (this.#unsaved.size > 0) this.#scheduleSave(failed ? SAVE_RETRY_MS : 0);
  }

  /** The checkpoint to store: the log position read, held below the first unsaved execution. */
  #safeCheckpoint(): number | undefined {
    let cp = this.#checkpoint;
    if (cp === undefined) return undefined;
    for (const m of [this.#unsaved, this.#saving]) for (const first of m.values()) if (first - 1 < cp) cp = Math.max(0, first - 1);
    for (const { first } of this.#parked.values()) if (first - 1 < cp) cp = Math.max(0, first - 1);
    return cp;
  }

  /** A refused PUT's record replaced by the one before it (none: removed). */
  async #takeBack(user: string, previous: PutRecord | undefined): Promise<void> {
    this.#putsTakenBack++;
    await this.#puts
      .restore(user, previous)
      .catch((err: unknown) =>
        this.#o.log?.warn(
          { err, user },
          'portfolio: a PUT refused with 503 may have left its record: a book of this user rebuilt later (the position store lost it) would hold its positions; PUT the positions again',
        ),
      );
  }

  /** The book a PUT record sets: as the PUT set it (its lines held since the day started). */
  #fromRecord(user: string, r: PutRecord): PositionBook {
    const book = emptyBook(user, r.ccy, r.t);
    book.seq = r.seq;
    book.put = { id: r.id, t: r.t };
    for (const { sym, qty, cost } of r.positions) book.positions[sym] = { qty, cost, dayQty0: qty, dayFlow: 0, realized: 0, day: this.#dayOf(sym, r.t) };
    return book;
  }

  /**
   * The book to catch up from the log: the stored one if it is built on the user's last PUT (its
   * record's id), or on a later PUT whose record is gone (a record store that lost data); else the
   * PUT's record (`rebuilt`): the store lost the book, or holds one from before the PUT (restored
   * from an older snapshot: possibly at the same `seq`, only the PUT tells them apart). With no
   * record, the stored book, or an empty one (the log's executions from its start).
   */
  #base(user: string, stored: PositionBook | undefined, record: PutRecord | undefined): { book: PositionBook; rebuilt: boolean } {
    if (record && !(stored?.put && (stored.put.id === record.id || stored.put.t > record.t))) {
      return { book: this.#fromRecord(user, record), rebuilt: true };
    }
    return { book: stored ?? emptyBook(user, this.#o.config.baseCurrency), rebuilt: false };
  }

  #applyOne(book: PositionBook, ev: StoredEvent): void {
    const sym = ev.d.sym;
    applyExecution(book, ev.d, Date.now(), this.#calendar(sym), this.#o.registry.get(sym)?.currency ?? book.ccy);
    book.seq = ev.seq;
  }

  /**
   * Apply the user's events after the book's seq (and before `before`) from the log. Events the
   * log no longer holds (retention, a log that lost data: the first one read, or `before`, is not
   * the next seq) can never be applied: the book is marked incomplete (`incomplete`, kept until a
   * PUT replaces the book), so that it is never shown as the user's positions
   * (test/private/portfolio-lost-book.test.ts). Before, it was built from the events left and
   * shown as if whole.
   */
  async #catchUp(book: PositionBook, before = Infinity, head = Infinity): Promise<void> {
    const from = book.seq;
    for await (const e of this.#eventsAfter(book.user, book.seq)) {
      if (e.seq >= before) break;
      if (e.seq > book.seq + 1) this.#markIncomplete(book, book.seq + 1, e.seq - 1);
      this.#applyOne(book, e);
      this.stats.applied++;
    }
    if (before !== Infinity) {
      if (before > book.seq + 1) this.#markIncomplete(book, book.seq + 1, before - 1);
      return;
    }
    // Nothing read past the book, while the log numbered events past it: they all left the log
    // (retention drops the oldest first, so when some are read the newest are among them). A book
    // rebuilt from a PUT record whose user had no execution for executions.retentionSec is one
    // (the Redis log expires a quiet user's events; its counter stays). The head is asked only
    // then: JetStream's is the hint #load already has (never more than the log holds).
    if (book.seq === from) {
      const newest = head === Infinity ? await this.#o.events.head(book.user) : head;
      if (newest > book.seq) this.#markIncomplete(book, book.seq + 1, newest);
    }
  }

  #markIncomplete(book: PositionBook, from: number, to: number): void {
    const was = book.incomplete;
    book.incomplete = was ? { from: Math.min(was.from, from), to: Math.max(was.to, to) } : { from, to };
    this.stats.incomplete++;
    this.#o.log?.warn(
      { user: book.user, from, to },
      'portfolio: the execution log no longer holds executions of this book (retention, or data lost): it is marked incomplete until its positions are PUT',
    );
  }

  /**
   * The user's last seq in the log, where it decides whether the log is read: JetStream replays
   * from the checkpoint, so a book read back is caught up only when the log holds more than it
   * (one request); the Redis and memory logs are always read past the book (Infinity).
   */
  async #logHead(user: string): Promise<number> {
    const log = this.#o.events;
    if (log.kind !== 'jetstream') return Infinity;
    return log.headHint ? log.headHint(user) : log.head(user);
  }

  /** The user's events after `seq` in the log, oldest first, read CATCH_UP_BATCH at a time. */
  async *#eventsAfter(user: string, seq: number): AsyncGenerator<StoredEvent> {
    for (let after = seq; ;) {
      const evs = await this.#o.events.read(user, after, CATCH_UP_BATCH);
      yield* evs;
      if (evs.length < CATCH_UP_BATCH) return;
      after = evs[evs.length - 1]!.seq;
    }
  }

  /** Wait until every update queued so far has been applied (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#queue;
    // books being read back, then what they queued (not those waiting for the store to answer)
    for (;;) {
      const loading = [...this.#parked.values()].filter((p) => !p.failed).map((p) => p.loaded);
      if (loading.length === 0) return;
      await Promise.all(loading);
      await this.#queue;
    }
  }

  /**
   * A user's positions. A book marked incomplete (#catchUp) is refused with 409 `INCOMPLETE`: it
   * lacks executions the log no longer holds, so its positions are not the user's.
   */
  async getPositions(user: string): Promise<PositionsView | undefined> {
    await this.#queue;
    if (this.#held(user)) {
      this.#touch(user);
      return shown(this.#books.get(user)!);
    }
    const unavailable = (err?: unknown): PortfolioRequestError =>
      Object.assign(new PortfolioRequestError(503, 'UNAVAILABLE', 'the position store or the execution log is unavailable: retry later'), { cause: err });
    const p = this.#parked.get(user);
    if (p) {
      // being read back: answered once its waiting executions are applied
      if (p.failed) throw unavailable();
      await p.loaded;
      await this.#queue;
      const b = this.#books.get(user);
      if (this.#parked.has(user)) throw unavailable();
      return b ? shown(b) : undefined;
    }
    // not in memory: read from the store, not kept (a read does not make a user active), with the
    // events the log holds past it (as #load applies them)
    let book: PositionBook | undefined;
    try {
      for (;;) {
        const takenBack = this.#putsTakenBack;
        const [stored, last, record] = await Promise.all([this.#o.store.get(user), this.#logHead(user), this.#puts.last(user)]);
        const held = this.#books.get(user);
        if (held) return shown(held);
        // a PUT under way (what was read may be its record, not saved yet) or failed meanwhile
        // (its record taken back since): read again once it is answered
        const putting = this.#putting.get(user);
        if (putting || this.#putsTakenBack !== takenBack) {
          await putting?.catch(() => undefined);
          continue;
        }
        // no book stored: the user's first book may never have been saved (or the store lost it), the
        // log has its events; a book set by a PUT that the store lost is built on the PUT's record
        const { book: b, rebuilt } = this.#base(user, stored, record);
        if (last > b.seq) await this.#catchUp(b, Infinity, last);
        if (stored || rebuilt || b.seq > 0) book = b;
        break;
      }
    } catch (err) {
      throw unavailable(err);
    }
    return book ? shown(book) : undefined;
  }

  putPositions(user: string, input: PositionsInput): Promise<PositionsView> {
    const refuse = (i: number, key: string, message: string): Promise<never> =>
      Promise.reject(new PortfolioRequestError(400, 'BAD_REQUEST', `field "positions.${i}.${key}": ${message}`, `positions.${i}.${key}`));
    // lines of one symbol add up; a cost basis is quantity x average price (prices are >= 0):
    // none without a quantity, never of the other sign (it would count in the totals unlisted)
    const merged = new Map<string, { qty: number; cost: number }>();
    for (let i = 0; i < input.positions.length; i++) {
      const { sym, qty, cost } = input.positions[i]!;
      if (!this.#o.registry.has(sym)) return refuse(i, 'sym', `unknown symbol "${sym}" (not in the instrument registry)`);
      if (qty === 0 ? cost !== 0 : cost * Math.sign(qty) < 0) {
        return refuse(
          i,
          'cost',
          `a cost basis is quantity x average price: ${qty === 0 ? '0 for quantity 0' : qty > 0 ? '>= 0 for a long' : '<= 0 for a short'}`,
        );
      }
      const cur = merged.get(sym) ?? { qty: 0, cost: 0 };
      cur.qty = roundQty(cur.qty + qty);
      cur.cost += cost;
      if (cur.cost * Math.sign(cur.qty) < 0) {
        return refuse(i, 'cost', `the lines of "${sym}" add up to a cost basis of the other sign than their quantity`);
      }
      // each line is within the bounds (the schema), and so is a symbol's sum (src/core/numbers.ts)
      if (Math.abs(cur.qty) > MAX_QTY) return refuse(i, 'qty', `the lines of "${sym}" add up to a quantity beyond -1e15 to 1e15`);
      if (Math.abs(cur.cost) > MAX_AMOUNT) return refuse(i, 'cost', `the lines of "${sym}" add up to a cost basis beyond -1e30 to 1e30`);
      merged.set(sym, cur);
    }
    let result: PositionsView | undefined;
    const unavailable = (err?: unknown, what = 'the position store'): PortfolioRequestError =>
      Object.assign(new PortfolioRequestError(503, 'UNAVAILABLE', `${what} is unavailable: positions not set, retry later`), { cause: err });
    return this.#enqueue(async () => {
      // Applied only once recorded and saved. A store known to be unreachable (its connection
      // lost, or a PING unanswered: redis.pingIntervalMs) refuses at once rather than after a
      // command timeout
      if (this.#storeDown || this.#o.store.ready === false) throw unavailable();
      const head = await this.#o.events.head(user);
      // The PUT's durable record (src/portfolio/put-records.ts), with the log position it is valid
      // from: the log has no trace of a PUT, so a book the store loses is rebuilt from this record
      // and the executions after `head` (#base). Written before the book is saved: a book stored
      // with this PUT always has its record. A save that fails takes the record back (the previous
      // one), so that a refused PUT changes nothing, not even a book rebuilt later.
      const lines = [...merged].filter(([, l]) => l.qty !== 0).map(([sym, { qty, cost }]) => ({ sym, qty, cost })); // lines that cancel out: flat, nothing held
      let previous: PutRecord | undefined;
      try {
        previous = await this.#puts.last(user);
      } catch (err) {
        throw unavailable(err, 'the execution log (where positions PUT are recorded)');
      }
      // later than the previous record even if this host's clock is behind the one that wrote it
      // (#base orders a stored book's PUT against the record by time when their ids differ)
      const record: PutRecord = { id: newPutId(), t: Math.max(Date.now(), (previous?.t ?? 0) + 1), seq: head, ccy: input.ccy, positions: lines };
      const book = this.#fromRecord(user, record);
      const saved = (async (): Promise<void> => {
        try {
          await this.#puts.put(user, record);
        } catch (err) {
          // (a write that timed out may have been stored all the same)
          await this.#takeBack(user, previous);
          throw unavailable(err, 'the execution log (where positions PUT are recorded)');
        }
        try {
          await this.#o.store.save(book);
        } catch (err) {
          this.#storeDown = true;
          this.#scheduleSave(SAVE_RETRY_MS);
          await this.#takeBack(user, previous);
          throw unavailable(err);
        }
      })();
      this.#putting.set(user, saved);
      try {
        await saved;
      } finally {
        this.#putting.delete(user);
      }
      this.#books.set(user, book);
      this.#touch(user);
      // saved as it is now: an older unsaved state of this user was sent to the store before it;
      // executions waiting for the old book are all at or below `head`
      this.#unsaved.delete(user);
      clearTimeout(this.#parked.get(user)?.retry);
      this.#parked.delete(user);
      await this.#track(book);
      this.#dirty.add(user);
      result = view(book);
    }).then(() => result!);
  }

  /** A gateway has a new subscriber for this user: publish the valuation at the next tick. */
  kick(user: string): void {
    this.#touch(user);
    if (this.#held(user)) {
      this.#forced.add(user);
      this.#dirty.add(user);
      return;
    }
    // an evicted (or unknown) user: the book read back first, never an empty valuation in its place
    this.#bring(user).kick = true;
  }

  /** The current valuation of a user (an empty portfolio when the user has no positions). */
  valuation(user: string, now = Date.now()): PortfolioPayload {
    const b = this.#books.get(user) ?? emptyBook(user, this.#o.config.baseCurrency, now);
    return valuate(b, this.#prices.source, this.#prices.fx, this.#o.registry, now);
  }

  /**
   * The valuation as published: with `dv`, the same book valued at the delayed prices (every
   * position line, and the rates of its currencies), for the gateways' delayed views
   * (src/fanout/portfolio-view.ts). Quantities, cost and the day's flows are the book's now: only
   * prices are delayed. A symbol whose delayed price is not known yet is unpriced there.
   */
  #withDelayed(user: string, payload: PortfolioPayload, now: number): PortfolioPayload {
    const delayed = this.#delayed;
    const b = this.#books.get(user);
    if (!delayed || !b || payload.positions.length === 0) return payload;
    const d = valuate(b, delayed.prices.source, delayed.prices.fx, this.#o.registry, now);
    if (d.positions.length !== payload.positions.length) return payload; // never: one book, one time
    const lines = d.positions.map((l, i): DelayedLine | 0 =>
      l.priced === false || l.sym !== payload.positions[i]!.sym ? 0 : [l.p, l.value, l.pnl, l.day_pnl],
    );
    return { ...payload, dv: { ms: delayed.ticks.delayMs, lines, ...(d.fx ? { fx: d.fx } : {}) } };
  }

  /**
   * A held symbol's trading day started since the last look: its users' day P&L starts again from
   * zero, to be published even when no price moves (a market closed at the day change).
   */
  #markNewDays(now: number): void {
    const from = this.#dayCheckAt;
    if (Math.floor(now / 60_000) === Math.floor(from / 60_000)) return; // days start on a minute
    this.#dayCheckAt = now;
    for (const [sym, users] of this.#needs) {
      if (this.#dayOf(sym, from) === this.#dayOf(sym, now)) continue;
      for (const u of users) this.#dirty.add(u);
    }
  }

  #publishDue(): void {
    this.#markNewDays(Date.now());
    const delayed = this.#delayed;
    delayed?.ticks.drain(Date.now(), (t) => {
      if (delayed.prices.apply(t)) for (const u of this.#needs.get(t.sym) ?? []) this.#dirty.add(u);
    });
    if (this.#dirty.size > 0) {
      const now = Date.now();
      for (const user of this.#dirty) {
        // a book held back behind the log (#holdBack): published once caught up (it is marked then)
        if (this.#parked.has(user)) continue;
        const payload = this.#withDelayed(user, this.valuation(user, now), now);
        const { t: _t, ...rest } = payload;
        const key = JSON.stringify(rest);
        const forced = this.#forced.delete(user);
        if (!forced && this.#lastSent.get(user) === key) {
          this.stats.unchanged++;
          continue;
        }
        this.#lastSent.set(user, key);
        this.#o.bus.publish(portfolioSubject(user), encodeBusMessage(payload));
        this.stats.published++;
      }
      this.#dirty.clear();
    }
    const cp = this.#safeCheckpoint();
    if (cp !== undefined && cp !== this.#checkpointSaved) {
      this.#checkpointSaved = cp;
      this.#o.store.setCheckpoint(cp).catch(() => {
        this.#checkpointSaved = undefined;
      });
    }
  }

  /** Subscribe to the prices this book needs (held symbols, forex legs to the base currency). */
  async #track(book: PositionBook): Promise<void> {
    const want = new Set<string>();
    const ccys = new Set<string>();
    for (const sym of Object.keys(book.positions)) {
      const inst = this.#o.registry.get(sym);
      if (!inst) continue;
      want.add(sym);
      ccys.add(inst.currency);
    }
    for (const c of Object.keys(book.closedRealized ?? {})) ccys.add(c);
    for (const c of ccys) for (const pair of this.#prices.fx.pairsFor(c, book.ccy)) want.add(pair);
    const had = this.#userSymbols.get(book.user) ?? new Set<string>();
    this.#userSymbols.set(book.user, want);
    const added: string[] = [];
    for (const sym of want) {
      if (had.has(sym)) continue;
      let users = this.#needs.get(sym);
      if (!users) {
        this.#needs.set(sym, (users = new Set()));
        this.#subscribePrice(sym);
        added.push(sym);
      }
      users.add(book.user);
    }
    for (const sym of had) if (!want.has(sym)) this.#release(book.user, sym);
    if (added.length > 0 && this.#o.lastValues) await this.#prime(added);
  }

  /** An evicted book: its prices are no longer needed for it. */
  #untrack(user: string): void {
    for (const sym of this.#userSymbols.get(user) ?? []) this.#release(user, sym);
    this.#userSymbols.delete(user);
  }

  #release(user: string, sym: string): void {
    const users = this.#needs.get(sym);
    users?.delete(user);
    if (users && users.size === 0) {
      this.#needs.delete(sym);
      for (const u of this.#subs.get(sym) ?? []) u();
      this.#subs.delete(sym);
      this.#prices.delete(sym);
      this.#delayed?.prices.delete(sym);
      this.#delayed?.ticks.delete(sym);
    }
  }

  #subscribePrice(sym: string): void {
    const inst = this.#o.registry.get(sym);
    if (!inst) return;
    const onTick = (_s: string, payload: Uint8Array): void => {
      let t: Tick;
      try {
        t = decodeTick(payload);
      } catch {
        return;
      }
      this.#delayed?.ticks.push(t, Date.now());
      if (this.#prices.apply(t)) for (const u of this.#needs.get(sym) ?? []) this.#dirty.add(u);
    };
    this.#subs.set(sym, [
      this.#o.bus.subscribe(marketSubject(inst.assetClass, 'ticker', sym), onTick),
      this.#o.bus.subscribe(marketSubject(inst.assetClass, 'quote', sym), onTick),
    ]);
  }

  async #prime(symbols: string[]): Promise<void> {
    const keys = symbols.flatMap((s) => [`ticker:${s}`, `quote:${s}`]);
    let values: (Uint8Array | undefined)[];
    try {
      values = await this.#o.lastValues!.getMany(keys);
    } catch {
      return;
    }
    for (const v of values) {
      if (!v) continue;
      try {
        const t = decodeTick(v);
        // a live tick may have arrived meanwhile: never overwrite it with the stored one
        if ((t.k === 'ticker' || t.k === 'quote') && this.#prices.has(t.sym, t.k)) continue;
        // delayed views see it `delayMs` after it was received (at once if that is past)
        this.#delayed?.ticks.push(t, nsToMs(t.rt));
        if (this.#prices.apply(t)) for (const u of this.#needs.get(t.sym) ?? []) this.#dirty.add(u);
      } catch {
        // not a tick
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#unfollow?.();
    this.#unkick?.();
    for (const us of this.#subs.values()) for (const u of us) u();
    this.#subs.clear();
    await this.#queue.catch(() => undefined);
    clearTimeout(this.#saveRetry);
    this.#saveRetry = undefined;
    for (const p of this.#parked.values()) clearTimeout(p.retry);
    if (this.#evictTimer) clearInterval(this.#evictTimer);
    // a last save of what is unsaved, unless the store is known down or a save hangs on it (what
    // stays unsaved is below the checkpoint: read again at the next start)
    if (this.#saving.size === 0 && !this.#storeDown) await this.#saveUnsaved();
    const cp = this.#safeCheckpoint();
    if (cp !== undefined && cp !== this.#checkpointSaved) {
      await this.#o.store.setCheckpoint(cp).catch(() => undefined);
    }
  }
}

/** The view of a book, refused while it is incomplete (409: a PUT sets it). */
function shown(b: PositionBook): PositionsView {
  const missing = b.incomplete;
  if (missing) {
    const which = missing.from === missing.to ? `execution ${missing.from}` : `executions ${missing.from} to ${missing.to}`;
    throw new PortfolioRequestError(
      409,
      'INCOMPLETE',
      `the positions of this user lack ${which}, which the execution log no longer holds (retention, or a position store that lost the book): set them with PUT /v1/users/{user}/positions`,
    );
  }
  return view(b);
}

function view(b: PositionBook): PositionsView {
  return {
    user: b.user,
    ccy: b.ccy,
    seq: b.seq,
    positions: Object.entries(b.positions)
      .filter(([, p]) => p.qty !== 0)
      .map(([sym, p]) => ({ sym, qty: p.qty, cost: clean(p.cost) })),
  };
}
