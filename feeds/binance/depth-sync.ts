import { decimal, price } from '../sdk/decimal.js';

/**
 * Binance's documented procedure for a local order book from the diff depth stream (Binance Spot
 * API docs, "WebSocket Streams" > "Diff. Depth Stream" and "How to manage a local order book
 * correctly"):
 *   1. open the `<symbol>@depth` (or `@depth@100ms`) stream and buffer its events, noting the
 *      first event's `U` (first update ID);
 *   2. GET /api/v3/depth?symbol=X&limit=N for a snapshot with `lastUpdateId`;
 *   3. if `lastUpdateId` < that first `U`, the snapshot is stale: get another;
 *   4. drop buffered events with `u` (final update ID) <= `lastUpdateId`; the book is the
 *      snapshot, its update ID `lastUpdateId`;
 *   5. apply the buffered events, then live ones: an event with `u` <= the book's update ID is
 *      ignored; one with `U` > update ID + 1 means events were lost: start again from 1;
 *      otherwise each [price, quantity] sets the level's quantity (0 removes it; removing a
 *      level that is not in the book is normal), and the update ID becomes `u`.
 * This class is that state machine for one symbol; the adapter does the I/O. Checked against the
 * page's current text (binance-spot-api-docs, web-socket-streams.md, 2026): "If the lastUpdateId
 * from the snapshot is strictly less than the U from step 2, go back to step 3" (onSnapshot's
 * stale rule), "discard any event where u is <= lastUpdateId of the snapshot" (the buffer filter),
 * "If the event last update ID (u) is less than the update ID of your local order book, ignore the
 * event" (onEvent ignores u <= update ID: an event ending at the book's ID is already in it), "If
 * the event first update ID (U) is greater than the update ID of your local order book + 1, you
 * have missed some events ... restart the process from the beginning" (the gap rule).
 *
 * The page's note on snapshot depth: "Since depth snapshots retrieved from the API have a limit on
 * the number of price levels (5000 on each side maximum), you won't learn the quantities for the
 * levels outside of the initial snapshot unless they change." A level beyond the snapshot's worst
 * price that an event happens to change is one of many the book does not know there: shown, it
 * would sit next to holes (levels that exist but never changed). So when a side of the snapshot
 * is full (`limit` levels), the book keeps to the snapshot's range on that side: levels worse than
 * its worst price are left out of every update (the book shows fewer levels, never a wrong one).
 * A side with fewer levels than `limit` is the whole side: nothing is left out. As the price moves
 * beyond the snapshot's range, a cut side knows fewer and fewer levels: once it knows fewer than
 * half of `limit`, the book is synced again from a new snapshot (the procedure from step 1), so
 * the side does not run empty while the exchange's book is full.
 */
export interface DepthEvent {
  /** first update ID in the event */
  U: number;
  /** final update ID in the event */
  u: number;
  /** event time, in the connection's unit (ms, or µs with timeUnit=MICROSECOND) */
  E: number;
  b: [number, number][];
  a: [number, number][];
}

export interface DepthSnapshot {
  lastUpdateId: number;
  bids: [number, number][];
  asks: [number, number][];
}

export type DepthOutput =
  | { kind: 'reset'; bids: [number, number][]; asks: [number, number][]; E: number }
  | { kind: 'update'; bids: [number, number][]; asks: [number, number][]; E: number };

/** The depthUpdate payload ("Diff. Depth Stream": e, E, s, U, u, b, a) with prices and quantities as numbers. */
export function parseDepthEvent(p: Record<string, any>): DepthEvent {
  if (!Number.isInteger(p.U) || !Number.isInteger(p.u)) throw new RangeError('depthUpdate: U and u must be integers');
  // E, the event time (ms, or µs with timeUnit=MICROSECOND): refused here when it is not one, so an
  // event that cannot be emitted never reaches the book (it would count as applied, or stamp a reset)
  if (p.E !== undefined && (typeof p.E !== 'number' || !Number.isSafeInteger(p.E) || p.E <= 0))
    throw new RangeError(`depthUpdate.E: ${JSON.stringify(p.E)} is not a time in ms or µs`);
  return { U: p.U, u: p.u, E: p.E ?? Date.now(), b: levels(p.b, 'depthUpdate.b'), a: levels(p.a, 'depthUpdate.a') };
}

/** The GET /api/v3/depth answer ("Order book": lastUpdateId, bids, asks). */
export function parseDepthSnapshot(p: Record<string, any>): DepthSnapshot {
  if (!Number.isInteger(p.lastUpdateId)) throw new RangeError('depth snapshot: lastUpdateId must be an integer');
  return { lastUpdateId: p.lastUpdateId, bids: levels(p.bids, 'depth.bids'), asks: levels(p.asks, 'depth.asks') };
}

function levels(v: unknown, field: string): [number, number][] {
  if (!Array.isArray(v)) throw new RangeError(`${field}: not an array of [price, quantity]`);
  return v.map((l: unknown, i) => {
    if (!Array.isArray(l) || l.length < 2) throw new RangeError(`${field}[${i}]: not a [price, quantity] pair`);
    return [price(l[0], `${field}[${i}].price`), decimal(l[1], `${field}[${i}].quantity`)] as [number, number];
  });
}

/**
 * Events held per book while it waits for a snapshot: the newest are kept. Dropping the oldest
 * is safe (the procedure needs the events from the snapshot's `lastUpdateId` on, and a snapshot
 * older than the first one held is stale and asked again); without a bound, a book waiting out a
 * long Retry-After (a 418 ban lasts from minutes to days) would grow without end.
 */
export const MAX_BUFFERED_EVENTS = 10_000;

/** the longest wait between two depth snapshot requests of one book while they keep failing or coming back stale */
export const MAX_SNAPSHOT_RETRY_MS = 30_000;

/**
 * The wait before the `failures`-th consecutive snapshot request of a book that failed or was
 * stale: `baseMs`, doubling with each further one, at most MAX_SNAPSHOT_RETRY_MS. A snapshot
 * costs request weight (REST "Order book": 5 for limit 1-100 up to 250 for 1001-5000, against the
 * IP's REQUEST_WEIGHT limit per minute, General API Information > LIMITS), so a book that cannot
 * sync must not ask at a steady fast pace.
 */
export function snapshotRetryMs(failures: number, baseMs: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, Math.min(failures - 1, 20)), Math.max(baseMs, MAX_SNAPSHOT_RETRY_MS));
}

/**
 * How long a refused REST request says to wait, ms; undefined for a status that is no rate limit.
 * General API Information > LIMITS > IP Limits: 429 when a request rate limit is broken, 418 when
 * the IP is banned for not backing off after 429s; "A Retry-After header is sent with a 418 or
 * 429 response and will give the number of seconds required to wait, in the case of a 429, to
 * prevent a ban, or, in the case of a 418, until the ban is over." Without a readable header: 60 s.
 */
export function rateLimitWaitMs(status: number, retryAfter: string | null | undefined): number | undefined {
  if (status !== 429 && status !== 418) return undefined;
  const s = Number(retryAfter);
  return (retryAfter != null && retryAfter.trim() !== '' && Number.isFinite(s) && s > 0 ? s : 60) * 1000;
}

export class DepthSync {
  #buffer: DepthEvent[] = [];
  /** the worst bid / ask price the snapshot covers when that side was cut at `limit` levels (levels beyond are unknown) */
  #bidFloor: number | undefined;
  #askCeiling: number | undefined;
  /** the prices a cut side knows (those of the snapshot and of later changes inside its range) */
  #known = { bids: new Set<number>(), asks: new Set<number>() };
  /** the book's update ID once synced, else undefined */
  #updateId: number | undefined;
  /** a snapshot request is out */
  fetching = false;
  /** snapshot requests in a row that failed or were stale (0 once synced): the retry backs off with it */
  failures = 0;

  /** @param limit levels per side asked of each snapshot (GET /api/v3/depth `limit`); undefined: snapshots are whole books */
  constructor(readonly limit?: number) {}

  get synced(): boolean {
    return this.#updateId !== undefined;
  }

  /**
   * A stream event. Returns what to emit, and whether a snapshot must be fetched (again): after a
   * `gap`, or to `refresh` a cut side that knows too few levels (see above).
   */
  onEvent(ev: DepthEvent): { out?: DepthOutput; fetch: boolean; gap?: string; refresh?: string } {
    if (this.#updateId === undefined) {
      this.#buffer.push(ev);
      if (this.#buffer.length > MAX_BUFFERED_EVENTS) this.#buffer.splice(0, this.#buffer.length - MAX_BUFFERED_EVENTS);
      return { fetch: !this.fetching };
    }
    if (ev.u <= this.#updateId) return { fetch: false };
    if (ev.U > this.#updateId + 1) {
      const gap = `update IDs ${this.#updateId + 1}..${ev.U - 1} missing`;
      this.restart();
      this.#buffer.push(ev);
      return { fetch: !this.fetching, gap };
    }
    this.#updateId = ev.u;
    const floor = this.#bidFloor;
    const ceiling = this.#askCeiling;
    const bids = floor === undefined ? ev.b : ev.b.filter(([p]) => p >= floor);
    const asks = ceiling === undefined ? ev.a : ev.a.filter(([p]) => p <= ceiling);
    if (bids.length === 0 && asks.length === 0 && (ev.b.length > 0 || ev.a.length > 0)) return { fetch: false }; // all outside the snapshot's range
    const out: DepthOutput = { kind: 'update', bids, asks, E: ev.E };
    const refresh = (floor === undefined ? undefined : this.#track('bids', bids)) ?? (ceiling === undefined ? undefined : this.#track('asks', asks));
    if (refresh === undefined) return { out, fetch: false };
    this.restart();
    return { out, fetch: !this.fetching, refresh };
  }

  /** Follow a cut side's known prices; a reason to sync again when fewer than half of `limit` are left. */
  #track(side: 'bids' | 'asks', levels: readonly [number, number][]): string | undefined {
    const known = this.#known[side];
    for (const [p, q] of levels) {
      if (q === 0) known.delete(p);
      else known.add(p);
    }
    const limit = this.limit ?? 0;
    return known.size * 2 < limit ? `${side} known to ${known.size} of ${limit} levels (the price moved beyond the snapshot)` : undefined;
  }

  /**
   * A snapshot arrived. `stale`: it is older than the first buffered event (fetch again); else
   * the reset and the buffered updates to emit, in order.
   */
  onSnapshot(snap: DepthSnapshot): { stale: true } | { stale: false; out: DepthOutput[] } {
    this.fetching = false;
    const first = this.#buffer[0];
    if (!first || snap.lastUpdateId < first.U) return { stale: true };
    const rest = this.#buffer.filter((e) => e.u > snap.lastUpdateId);
    // the snapshot carries no time: it is the book at lastUpdateId, so it takes the time of the last
    // buffered event that update ID falls in or follows (U <= lastUpdateId), not the first one held
    let at = first;
    for (const e of this.#buffer) if (e.U <= snap.lastUpdateId) at = e;
    this.#buffer = [];
    this.#updateId = snap.lastUpdateId;
    this.failures = 0;
    // the note on snapshot depth (above): a side cut at `limit` levels is known down to its worst price only
    const full = (side: [number, number][]): boolean => this.limit !== undefined && side.length >= this.limit;
    this.#bidFloor = full(snap.bids) ? worst(snap.bids, true) : undefined;
    this.#askCeiling = full(snap.asks) ? worst(snap.asks, false) : undefined;
    this.#known.bids = new Set(this.#bidFloor === undefined ? [] : snap.bids.filter(([, q]) => q > 0).map(([p]) => p));
    this.#known.asks = new Set(this.#askCeiling === undefined ? [] : snap.asks.filter(([, q]) => q > 0).map(([p]) => p));
    const out: DepthOutput[] = [{ kind: 'reset', bids: snap.bids.filter(([, q]) => q > 0), asks: snap.asks.filter(([, q]) => q > 0), E: at.E }];
    for (let i = 0; i < rest.length; i++) {
      const r = this.onEvent(rest[i]!);
      if (r.out) out.push(r.out);
      if (!this.synced) {
        // a gap (or a refresh) inside the buffer: start over, keeping the events after it for the next snapshot
        this.#buffer.push(...rest.slice(i + 1));
        return { stale: true };
      }
    }
    return { stale: false, out };
  }

  /** Forget the book (reconnect, unsubscribe, a gap). */
  restart(): void {
    this.#buffer = [];
    this.#updateId = undefined;
  }

  get buffered(): number {
    return this.#buffer.length;
  }
}

/** the worst price of a snapshot side: the lowest bid, the highest ask */
function worst(levels: readonly [number, number][], bids: boolean): number {
  let w = levels[0]![0];
  for (const [p] of levels) if (bids ? p < w : p > w) w = p;
  return w;
}
