import type { HubClock } from '../../src/fanout/hub.js';

/** A HubClock driven by the test: advance(ms) fires intervals/timeouts in time order. */
export class VirtualClock implements HubClock {
  now = 0;
  /** timeouts fire this much after they are due (a busy event loop) */
  lateMs = 0;
  #id = 0;
  nowMs(): number {
    return this.now;
  }
  readonly #timers = new Map<number, { at: number; every?: number; fn: () => void }>();
  readonly #deferred: (() => void)[] = [];

  setInterval(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.now + ms, every: ms, fn });
    return id;
  }
  clearInterval(h: unknown): void {
    this.#timers.delete(h as number);
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.now + ms + this.lateMs, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number);
  }
  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }
  /** run deferred work (the end of the current event-loop turn) */
  turn(): void {
    while (this.#deferred.length) this.#deferred.shift()!();
  }
  advance(ms: number): void {
    this.turn();
    const end = this.now + ms;
    for (;;) {
      let next: [number, { at: number; every?: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      const [id, t] = next;
      this.now = t.at;
      if (t.every) t.at += t.every;
      else this.#timers.delete(id);
      t.fn();
      this.turn();
    }
    this.now = end;
  }
  get pendingTimers(): number {
    return this.#timers.size;
  }
}
