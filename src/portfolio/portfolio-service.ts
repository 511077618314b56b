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
import { PF_KICK_PREFIX, portfolioSubject, userOf } from '../bus/private-subjects.js';
import type { LastValueStore } from '../store/last-value-store.js';
import { FxRates } from './fx.js';
import type { PortfolioApi, PositionsView } from './portfolio-api.js';
import { PortfolioRequestError } from './portfolio-api.js';
import type { PositionStore } from './position-store.js';
import type { PositionBook } from './positions.js';
import { roundQty } from '../core/numbers.js';
import { applyExecution, emptyBook, tradingDay } from './positions.js';
import type { PortfolioPayload, PriceSource } from './valuation.js';
import { clean, valuate } from './valuation.js';

export interface PortfolioServiceOptions {
  bus: Bus;
  registry: InstrumentRegistry;
  store: PositionStore;
  /** the executions log: followed for position updates, asked for heads on PUT */
  events: EventLog;
  config: Config['portfolio'];
  /** snapshots to price symbols before their first live tick */
  lastValues?: LastValueStore;
  log?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

/** events read per request when catching up at start */
const CATCH_UP_BATCH = 500;

interface PriceState {
  /** last trade price (ticker) */
  last?: number;
  /** ticker day open and the instrument's trading day it belongs to */
  open?: number;
  openDay?: number;
  mid?: number;
  /** first price seen in the trading day, the day open when no ticker says otherwise */
  first?: number;
  firstDay?: number;
  /** the latest ticker's trading day and its previous close `pc` */
  tickerDay?: number;
  prevClose?: number;
}

/**
 * Positions and live valuation. Executions from the log update quantity and cost basis (once
 * each: a book remembers the last sequence applied); prices come from the bus (ticker and quote
 * subjects of the symbols held, and the forex pairs their currencies need); each user's
 * `portfolio` payload is published on `pf.val.<user>` at most every `publishMs`, and only when it
 * changed (or a gateway asked, with `pf.kick.<user>`, for a new subscriber).
 */
export class PortfolioService implements PortfolioApi {
  readonly stats = { applied: 0, skipped: 0, published: 0, unchanged: 0 };
  readonly #o: PortfolioServiceOptions;
  readonly #books = new Map<string, PositionBook>();
  readonly #prices = new Map<string, PriceState>();
  readonly #fx: FxRates;
  readonly #priceSource: PriceSource;
  /** symbol -> users who need its price; symbol -> bus subscriptions */
  readonly #needs = new Map<string, Set<string>>();
  readonly #userSymbols = new Map<string, Set<string>>();
  readonly #subs = new Map<string, Unsubscribe[]>();
  readonly #dirty = new Set<string>();
  readonly #forced = new Set<string>();
  readonly #lastSent = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();
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
    this.#fx = new FxRates(opts.registry, (pair) => {
      const s = this.#prices.get(pair);
      return s?.mid ?? s?.last;
    });
    this.#priceSource = {
      price: (sym) => {
        const s = this.#prices.get(sym);
        const p = s?.last ?? s?.mid;
        if (!s || p === undefined) return undefined;
        const today = this.#dayOf(sym, Date.now());
        const open = s.openDay === today ? s.open : s.firstDay === today ? s.first : undefined;
        // today's previous close: today's ticker carries it; a ticker of an earlier day (no trade
        // today yet) closed that day at its last price
        const prevClose = s.tickerDay === today ? s.prevClose : s.tickerDay !== undefined && s.tickerDay < today ? s.last : undefined;
        return prevClose === undefined ? { p, open } : { p, open, prevClose };
      },
    };
  }

  /** a symbol's trading days (its ticker's day) */
  #calendar(sym: string): TradingCalendar {
    return calendarOf(this.#o.registry.get(sym));
  }

  #dayOf(sym: string, ms: number): number {
    return tradingDay(ms, this.#calendar(sym));
  }

  async start(): Promise<void> {
    for (const b of await this.#o.store.load()) {
      this.#books.set(b.user, b);
      await this.#track(b);
    }
    this.#checkpoint = await this.#o.store.checkpoint();
    this.#checkpointSaved = this.#checkpoint;
    // Only JetStream replays from the checkpoint; the Redis and memory logs follow from now. Their
    // events stored after a book's last save (a crash between the append and the save) are read
    // here, first in the queue: live events queue behind them, and one seen twice is skipped by seq.
    if (this.#o.events.kind !== 'jetstream') {
      const books = [...this.#books.values()];
      this.#enqueue(() => this.#catchUp(books)).catch(() => undefined); // logged by #enqueue
    }
    this.#unfollow = this.#o.events.follow((user, ev, pos) => this.#enqueue(() => this.#apply(user, ev, pos)), { after: this.#checkpoint ?? 0 });
    this.#unkick = this.#o.bus.subscribe(PF_KICK_PREFIX + '*', (subject) => {
      const user = userOf(subject, PF_KICK_PREFIX);
      if (user !== undefined) this.kick(user);
    });
    this.#timer = setInterval(() => this.#publishDue(), this.#o.config.publishMs);
    this.#timer.unref();
  }

  async #catchUp(books: PositionBook[]): Promise<void> {
    for (const b of books) {
      try {
        for await (const ev of this.#eventsAfter(b.user, b.seq)) {
          if (this.#closed) break;
          await this.#apply(b.user, ev, this.#checkpoint ?? 0);
        }
      } catch (err) {
        this.#o.log?.warn({ err, user: b.user }, 'portfolio catch-up from the execution log failed');
      }
    }
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch((err: unknown) => this.#o.log?.warn({ err }, 'portfolio update failed'));
    return next;
  }

  async #apply(user: string, ev: StoredEvent, position: number): Promise<void> {
    if (this.#closed) return;
    let book = this.#books.get(user);
    if (!book) {
      book = emptyBook(user, this.#o.config.baseCurrency);
      // a user's first event seen is not their first one: the earlier ones were stored but never
      // applied (a crash before the first save), or this log replay starts late: read them first
      if (ev.seq > 1) await this.#readEarlier(book, ev.seq);
    }
    if (ev.seq <= book.seq) {
      this.stats.skipped++;
    } else {
      this.#applyOne(book, ev);
      this.#books.set(user, book);
      await this.#o.store.save(book);
      await this.#track(book);
      this.#dirty.add(user);
      this.stats.applied++;
    }
    this.#checkpoint = Math.max(this.#checkpoint ?? 0, position);
  }

  #applyOne(book: PositionBook, ev: StoredEvent): void {
    const sym = ev.d.sym;
    applyExecution(book, ev.d, Date.now(), this.#calendar(sym), this.#o.registry.get(sym)?.currency ?? book.ccy);
    book.seq = ev.seq;
  }

  /** Apply a new book's events before `seq` from the log (those retained). */
  async #readEarlier(book: PositionBook, seq: number): Promise<void> {
    for await (const e of this.#eventsAfter(book.user, book.seq)) {
      if (e.seq >= seq) return;
      this.#applyOne(book, e);
      this.stats.applied++;
    }
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
  }

  async getPositions(user: string): Promise<PositionsView | undefined> {
    await this.#queue;
    const b = this.#books.get(user);
    return b ? view(b) : undefined;
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
      merged.set(sym, cur);
    }
    let result: PositionsView | undefined;
    return this.#enqueue(async () => {
      const head = await this.#o.events.head(user);
      const now = Date.now();
      const book = emptyBook(user, input.ccy, now);
      book.seq = head;
      for (const [sym, { qty, cost }] of merged) {
        // lines that cancel out: flat, nothing held
        if (qty !== 0) book.positions[sym] = { qty, cost, dayQty0: qty, dayFlow: 0, realized: 0, day: this.#dayOf(sym, now) };
      }
      this.#books.set(user, book);
      await this.#o.store.save(book);
      await this.#track(book);
      this.#dirty.add(user);
      result = view(book);
    }).then(() => result!);
  }

  /** A gateway has a new subscriber for this user: publish the valuation at the next tick. */
  kick(user: string): void {
    this.#forced.add(user);
    this.#dirty.add(user);
  }

  /** The current valuation of a user (an empty portfolio when the user has no positions). */
  valuation(user: string, now = Date.now()): PortfolioPayload {
    const b = this.#books.get(user) ?? emptyBook(user, this.#o.config.baseCurrency, now);
    return valuate(b, this.#priceSource, this.#fx, this.#o.registry, now);
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
    if (this.#dirty.size > 0) {
      const now = Date.now();
      for (const user of this.#dirty) {
        const payload = this.valuation(user, now);
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
    const cp = this.#checkpoint;
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
    for (const c of ccys) for (const pair of this.#fx.pairsFor(c, book.ccy)) want.add(pair);
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
    for (const sym of had) {
      if (want.has(sym)) continue;
      const users = this.#needs.get(sym);
      users?.delete(book.user);
      if (users && users.size === 0) {
        this.#needs.delete(sym);
        for (const u of this.#subs.get(sym) ?? []) u();
        this.#subs.delete(sym);
        this.#prices.delete(sym);
      }
    }
    if (added.length > 0 && this.#o.lastValues) await this.#prime(added);
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
      if (this.#onTick(t)) for (const u of this.#needs.get(sym) ?? []) this.#dirty.add(u);
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
        const s = this.#prices.get(t.sym);
        // a live tick may have arrived meanwhile: never overwrite it with the stored one
        if (t.k === 'ticker' && s?.last !== undefined) continue;
        if (t.k === 'quote' && s?.mid !== undefined) continue;
        if (this.#onTick(t)) for (const u of this.#needs.get(t.sym) ?? []) this.#dirty.add(u);
      } catch {
        // not a tick
      }
    }
  }

  /** Update the price state; true when something changed. */
  #onTick(t: Tick): boolean {
    let s = this.#prices.get(t.sym);
    if (!s) this.#prices.set(t.sym, (s = {}));
    const ms = nsToMs(t.ts);
    const day = this.#dayOf(t.sym, Date.now());
    let changed = false;
    if (t.k === 'ticker') {
      if (s.last !== t.p) changed = true;
      s.last = t.p;
      // the ticker's day is the instrument's trading day: its open is today's when its time is in today
      const tickerDay = this.#dayOf(t.sym, ms);
      if (tickerDay === day) {
        if (s.open !== t.o || s.openDay !== day) changed = true;
        s.open = t.o;
        s.openDay = day;
      }
      if (s.prevClose !== t.pc || s.tickerDay !== tickerDay) changed = true;
      s.tickerDay = tickerDay;
      if (t.pc === undefined) delete s.prevClose;
      else s.prevClose = t.pc;
    } else if (t.k === 'quote') {
      // a quote with an empty side has no mid
      if (t.bp === undefined || t.ap === undefined || !(t.bp > 0 && t.ap > 0)) return false;
      const mid = (t.bp + t.ap) / 2;
      if (s.mid !== mid) changed = true;
      s.mid = mid;
    } else return false;
    if (s.firstDay !== day) {
      const first = s.last ?? s.mid;
      if (first !== undefined) s.first = first;
      else delete s.first;
      s.firstDay = day;
    }
    return changed;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#unfollow?.();
    this.#unkick?.();
    for (const us of this.#subs.values()) for (const u of us) u();
    this.#subs.clear();
    await this.#queue.catch(() => undefined);
    if (this.#checkpoint !== undefined && this.#checkpoint !== this.#checkpointSaved) {
      await this.#o.store.setCheckpoint(this.#checkpoint).catch(() => undefined);
    }
  }
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
