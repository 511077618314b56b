import type { Bar } from '../src/client/index.js';

/**
 * A small candlestick chart of 1-second bars on a canvas. Bars are keyed by start time, so an
 * open bar's updates replace its previous state; drawing happens at most once per frame.
 */
export class BarChart {
  readonly #canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #max: number;
  #bars = new Map<number, Bar>();
  #dirty = false;
  #label = '';

  constructor(canvas: HTMLCanvasElement, maxBars = 90) {
    const ctx = canvas.getContext('2d');
    if (!ctx) throw new Error('canvas 2d context unavailable');
    this.#canvas = canvas;
    this.#ctx = ctx;
    this.#max = maxBars;
    new ResizeObserver(() => this.#schedule()).observe(canvas);
  }

  /** Forget all bars (new symbol). */
  reset(label: string): void {
    this.#bars.clear();
    this.#label = label;
    this.#schedule();
  }

  get size(): number {
    return this.#bars.size;
  }

  push(bar: Bar): void {
    this.#bars.set(bar.t, bar);
    if (this.#bars.size > this.#max) {
      const oldest = [...this.#bars.keys()].sort((a, b) => a - b).slice(0, this.#bars.size - this.#max);
      for (const t of oldest) this.#bars.delete(t);
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#dirty) return;
    this.#dirty = true;
    requestAnimationFrame(() => {
      this.#dirty = false;
      this.#draw();
    });
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
    const bars = [...this.#bars.values()].sort((a, b) => a.t - b.t);
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillStyle = '#8b949e';
    if (bars.length === 0) {
      ctx.fillText(this.#label ? `waiting for ${this.#label} bars…` : 'no symbol', 10, 20);
      return;
    }
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
    const padBottom = 14;
    const axis = 70;
    const plotW = w - axis - 8;
    const y = (v: number): number => padTop + ((hi - v) / (hi - lo)) * (h - padTop - padBottom);
    const slot = plotW / this.#max;
    const body = Math.max(1, slot * 0.6);
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
    const start = this.#max - bars.length;
    bars.forEach((b, i) => {
      const x = (start + i) * slot + slot / 2;
      const up = b.c >= b.o;
      ctx.strokeStyle = ctx.fillStyle = up ? '#2ea043' : '#f85149';
      ctx.beginPath();
      ctx.moveTo(Math.round(x) + 0.5, y(b.h));
      ctx.lineTo(Math.round(x) + 0.5, y(b.l));
      ctx.stroke();
      const top = y(Math.max(b.o, b.c));
      const bh = Math.max(1, y(Math.min(b.o, b.c)) - top);
      ctx.globalAlpha = b.closed ? 1 : 0.6;
      ctx.fillRect(x - body / 2, top, body, bh);
      ctx.globalAlpha = 1;
    });
    const last = bars[bars.length - 1]!;
    ctx.fillStyle = '#d7dde5';
    ctx.fillText(`${this.#label}  ${last.c.toFixed(digits)}`, 6, 12);
  }
}
