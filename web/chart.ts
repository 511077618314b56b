import type { Bar } from '../src/client/index.js';

/** Loads closed bars that ended before `before` (ms), oldest first: GET /v1/bars in the dashboard. */
export type LoadOlder = (before: number, limit: number) => Promise<Bar[]>;

export interface BarChartOptions {
  /** candles in view (default 90) */
  visible?: number;
  /** most candles kept in memory; the oldest go first (default 5000) */
  maxBars?: number;
  /** scroll back beyond the loaded bars: called when the view nears the oldest bar */
  loadOlder?: LoadOlder;
  /** bars asked per scroll-back page (default 300, at most 1000) */
  pageBars?: number;
}

/** What the chart shows, for tests and debugging (window.tickwire.chart in the dashboard). */
export interface ChartView {
  bars: number;
  oldest: number | undefined;
  newest: number | undefined;
  /** start of the first and last candle in view */
  from: number | undefined;
  to: number | undefined;
  /** candles between the newest bar and the right edge of the view (0: following live) */
  offset: number;
  loading: boolean;
  /** no older bars to load */
  exhausted: boolean;
  pagesLoaded: number;
}

const AXIS_W = 70;
const TIME_H = 18;

/**
 * A candlestick chart on a canvas, with a price axis and a time axis. Bars are keyed by start
 * time, so an open bar's updates (and a corrected closed bar) replace the earlier state; a bar
 * sent `empty` (its trades were cancelled: the interval has no bar) removes the candle. It opens
 * with history (`load`, from the subscribe's `history`), follows the live bars at the right edge,
 * and scrolls back with the mouse wheel, a drag or the arrow keys; when the view nears the oldest
 * bar it asks `loadOlder` for the page before it. Drawing happens at most once per frame.
 */
export class BarChart {
  readonly #canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #visible: number;
  readonly #max: number;
  readonly #pageBars: number;
  readonly #loadOlder: LoadOlder | undefined;
  #bars = new Map<number, Bar>();
  #sorted: Bar[] | undefined;
  #dirty = false;
  #label = '';
  #ivMs = 1000;
  /** candles between the newest bar and the right edge */
  #offset = 0;
  #loading = false;
  #exhausted = false;
  #pages = 0;
  /** start of the oldest bar a scroll-back page brought, empty ones included: the next page ends there */
  #pagedTo: number | undefined;
  /** bumped by reset: a page that arrives for the previous symbol or interval is dropped */
  #generation = 0;
  #dragX: number | undefined;

  constructor(canvas: HTMLCanvasElement, opts: BarChartOptions = {}) {
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('canvas 2d context unavailable');
    this.#canvas = canvas;
    this.#ctx = ctx;
    this.#visible = Math.max(10, opts.visible ?? 90);
    this.#max = Math.max(this.#visible * 2, opts.maxBars ?? 5000);
    this.#pageBars = Math.min(1000, Math.max(1, opts.pageBars ?? 300));
    this.#loadOlder = opts.loadOlder;
    new ResizeObserver(() => this.#schedule()).observe(canvas);
    canvas.tabIndex = 0;
    canvas.addEventListener(
      'wheel',
      (e) => {
        e.preventDefault();
        const step = Math.max(1, Math.round(this.#visible / 10));
        this.scrollBy(e.deltaY > 0 || e.deltaX < 0 ? step : -step);
      },
      { passive: false },
    );
    canvas.addEventListener('pointerdown', (e) => {
      this.#dragX = e.clientX;
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener('pointermove', (e) => {
      if (this.#dragX === undefined) return;
      const slot = Math.max(1, (canvas.clientWidth - AXIS_W) / this.#visible);
      const moved = Math.trunc((e.clientX - this.#dragX) / slot);
      if (moved !== 0) {
        this.#dragX += moved * slot;
        this.scrollBy(moved); // dragging right shows older bars
      }
    });
    canvas.addEventListener('pointerup', () => {
      this.#dragX = undefined;
    });
    canvas.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowLeft') this.scrollBy(Math.round(this.#visible / 4));
      else if (e.key === 'ArrowRight') this.scrollBy(-Math.round(this.#visible / 4));
      else if (e.key === 'End') this.scrollBy(-this.#offset);
      else return;
      e.preventDefault();
    });
    canvas.addEventListener('dblclick', () => this.scrollBy(-this.#offset)); // back to live
  }

  /** Forget all bars (another symbol or interval); `ivMs` is the bar interval in ms. */
  reset(label: string, ivMs = this.#ivMs): void {
    this.#bars.clear();
    this.#sorted = undefined;
    this.#label = label;
    this.#ivMs = ivMs;
    this.#offset = 0;
    this.#loading = false;
    this.#exhausted = false;
    this.#pages = 0;
    this.#pagedTo = undefined;
    this.#generation++;
    this.#schedule();
  }

  get size(): number {
    return this.#bars.size;
  }

  /** Many bars at once: the history of a subscribe, or a page loaded while scrolling back. */
  load(bars: readonly Bar[]): void {
    for (const b of bars) {
      // an emptied bar is kept flagged by the bar store (history, GET /v1/bars): no candle there
      if (b.empty) this.#bars.delete(b.t);
      else this.#bars.set(b.t, b);
    }
    this.#sorted = undefined;
    this.#trim(true);
    this.#schedule();
  }

  /** A live bar update (an open bar's new state, or a closed bar). */
  push(bar: Bar): void {
    if (bar.empty) {
      this.#remove(bar.t);
      return;
    }
    const isNew = !this.#bars.has(bar.t);
    this.#bars.set(bar.t, bar);
    this.#sorted = undefined;
    // scrolled back: keep the view on the same bars while new ones arrive on the right
    if (isNew && this.#offset > 0 && bar.t > (this.#sortedBars().at(-2)?.t ?? -Infinity)) this.#offset++;
    this.#trim(false);
    this.#schedule();
  }

  /** An emptied bar: its candle goes; scrolled back, the view stays on the same bars. */
  #remove(t: number): void {
    if (!this.#bars.has(t)) return;
    const bars = this.#sortedBars();
    if (this.#offset > 0 && bars.findIndex((b) => b.t === t) > this.#window(bars).last) this.#offset--;
    this.#bars.delete(t);
    this.#sorted = undefined;
    this.#schedule();
  }

  /** Move the view by `n` candles: positive is back in time, negative towards live. */
  scrollBy(n: number): void {
    const most = Math.max(0, this.#bars.size - Math.min(this.#visible, this.#bars.size));
    this.#offset = Math.min(most, Math.max(0, this.#offset + n));
    this.#schedule();
    this.#maybeLoadOlder();
  }

  view(): ChartView {
    const bars = this.#sortedBars();
    const { first, last } = this.#window(bars);
    return {
      bars: bars.length,
      oldest: bars[0]?.t,
      newest: bars.at(-1)?.t,
      from: bars[first]?.t,
      to: bars[last]?.t,
      offset: this.#offset,
      loading: this.#loading,
      exhausted: this.#exhausted,
      pagesLoaded: this.#pages,
    };
  }

  #sortedBars(): Bar[] {
    return (this.#sorted ??= [...this.#bars.values()].sort((a, b) => a.t - b.t));
  }

  /** indices of the first and last candle in view */
  #window(bars: readonly Bar[]): { first: number; last: number } {
    const last = bars.length - 1 - this.#offset;
    return { first: Math.max(0, last - this.#visible + 1), last };
  }

  /** Over the memory bound: drop from the side away from the view. */
  #trim(keepOld: boolean): void {
    const over = this.#bars.size - this.#max;
    if (over <= 0) return;
    const bars = this.#sortedBars();
    const drop = keepOld && this.#offset > this.#max / 2 ? bars.slice(bars.length - over) : bars.slice(0, over);
    for (const b of drop) this.#bars.delete(b.t);
    if (drop[0] === bars[0]) {
      // older bars were let go: they can be loaded again
      this.#exhausted = false;
      this.#pagedTo = undefined;
    }
    this.#sorted = undefined;
    this.#offset = Math.min(this.#offset, Math.max(0, this.#bars.size - this.#visible));
  }

  #maybeLoadOlder(): void {
    if (!this.#loadOlder || this.#loading || this.#exhausted) return;
    const bars = this.#sortedBars();
    if (bars.length === 0) return;
    const { first } = this.#window(bars);
    if (first > this.#visible / 2) return; // enough loaded to the left of the view
    const generation = this.#generation;
    const before = Math.min(bars[0]!.t, this.#pagedTo ?? Infinity);
    this.#loading = true;
    this.#loadOlder(before, this.#pageBars).then(
      (older) => {
        if (generation !== this.#generation) return;
        this.#loading = false;
        this.#pages++;
        const fresh = older.filter((b) => b.t < before && !this.#bars.has(b.t));
        if (fresh.length === 0) this.#exhausted = true;
        // a page of only emptied bars adds no candle: the next one is asked before it, not again
        for (const b of fresh) this.#pagedTo = Math.min(this.#pagedTo ?? Infinity, b.t);
        this.load(fresh);
        this.#maybeLoadOlder();
      },
      () => {
        if (generation === this.#generation) this.#loading = false;
      },
    );
  }

  #schedule(): void {
    if (this.#dirty) return;
    this.#dirty = true;
    requestAnimationFrame(() => {
      this.#dirty = false;
      this.#draw();
    });
  }

  #timeLabel(t: number): string {
    const d = new Date(t);
    const p = (n: number): string => String(n).padStart(2, '0');
    if (this.#ivMs >= 86_400_000) return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
    if (this.#ivMs >= 3_600_000) return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:00`;
    if (this.#ivMs >= 60_000) return `${p(d.getHours())}:${p(d.getMinutes())}`;
    return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  #draw(): void {
    const canvas = this.#canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(100, canvas.clientWidth);
    const h = Math.max(80, canvas.clientHeight);
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = this.#ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const all = this.#sortedBars();
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#8b949e';
    if (all.length === 0) {
      ctx.fillText(this.#label ? `waiting for ${this.#label} bars…` : 'no symbol', 10, 20);
      return;
    }
    const { first, last } = this.#window(all);
    const bars = all.slice(first, last + 1);
    let lo = Infinity;
    let hi = -Infinity;
    for (const b of bars) {
      lo = Math.min(lo, b.l);
      hi = Math.max(hi, b.h);
    }
    if (hi === lo) {
      hi += Math.abs(hi) * 0.0005 || 1;
      lo -= Math.abs(lo) * 0.0005 || 1;
    }
    const padTop = 14;
    const plotW = w - AXIS_W - 8;
    const plotH = h - padTop - TIME_H - 4;
    const y = (v: number): number => padTop + ((hi - v) / (hi - lo)) * plotH;
    const slot = plotW / this.#visible;
    const body = Math.max(1, slot * 0.6);
    // the newest candle in view sits at the right edge; missing intervals keep their slot, so
    // the time axis stays linear
    const rightT = bars[bars.length - 1]!.t;
    const x = (t: number): number => plotW - slot / 2 - ((rightT - t) / this.#ivMs) * slot;
    // grid and price axis
    ctx.strokeStyle = '#2a313c';
    ctx.lineWidth = 1;
    const digits = hi < 10 ? 4 : 2;
    for (let i = 0; i <= 4; i++) {
      const v = lo + ((hi - lo) * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(0, yy);
      ctx.lineTo(plotW, yy);
      ctx.stroke();
      ctx.fillText(v.toFixed(digits), plotW + 6, yy + 4);
    }
    // time axis: a label about every 90 px, on round multiples of the interval
    const every = Math.max(1, Math.ceil(90 / slot));
    const baseY = padTop + plotH;
    ctx.textAlign = 'center';
    for (let k = Math.floor(rightT / this.#ivMs); ; k--) {
      if (k % every !== 0) continue;
      const t = k * this.#ivMs;
      const xx = x(t);
      if (xx < 30) break;
      ctx.strokeStyle = '#2a313c';
      ctx.beginPath();
      ctx.moveTo(Math.round(xx) + 0.5, padTop);
      ctx.lineTo(Math.round(xx) + 0.5, baseY);
      ctx.stroke();
      ctx.fillStyle = '#8b949e';
      ctx.fillText(this.#timeLabel(t), xx, baseY + 14);
    }
    ctx.textAlign = 'start';
    for (const b of bars) {
      const xx = x(b.t);
      if (xx < -slot) continue;
      const up = b.c >= b.o;
      ctx.strokeStyle = ctx.fillStyle = up ? '#2ea043' : '#f85149';
      ctx.beginPath();
      ctx.moveTo(Math.round(xx) + 0.5, y(b.h));
      ctx.lineTo(Math.round(xx) + 0.5, y(b.l));
      ctx.stroke();
      const top = y(Math.max(b.o, b.c));
      const bh = Math.max(1, y(Math.min(b.o, b.c)) - top);
      ctx.globalAlpha = b.closed ? 1 : 0.6;
      ctx.fillRect(xx - body / 2, top, body, bh);
      ctx.globalAlpha = 1;
    }
    const newest = all[all.length - 1]!;
    ctx.fillStyle = '#d7dde5';
    const where = this.#offset > 0 ? `  ◀ ${this.#offset} back (double-click: live)` : '';
    ctx.fillText(`${this.#label}  ${newest.c.toFixed(digits)}${where}`, 6, 12);
  }
}
