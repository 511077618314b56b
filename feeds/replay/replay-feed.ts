import { z } from 'zod';
import { nowNs } from '../../src/core/time.js';
import type { FeedAdapter, FeedContext, TickInput } from '../sdk/adapter.js';
import { commonFeedFields } from '../config.js';
import { readRecordingFile } from './format.js';

/**
 * Replays a recording (JSON lines or CSV, see format.ts) as a feed: at the recorded pace scaled
 * by `speed` (1 = real time, 10 = ten times faster, "max" = as fast as the engine takes them),
 * optionally looping. With `retime` (default) event times are shifted to now, so bars and
 * tickers built from a replay look live; trade ids get a `~N` suffix from the second loop on so
 * that they stay unique per source.
 */
export const ReplayOptionsSchema = z
  .object({
    ...commonFeedFields,
    file: z.string().min(1).describe('recording to play (.jsonl / .ndjson / .json lines, or .csv)'),
    format: z.enum(['auto', 'jsonl', 'csv']).default('auto'),
    speed: z
      .union([z.number().positive(), z.literal('max')])
      .default(1)
      .describe('1 = recorded pace, 10 = ten times faster, "max" = as fast as possible'),
    loop: z.boolean().default(false),
    retime: z.boolean().default(true).describe('shift event times to now (keeps the recorded spacing / speed)'),
    quotesOnly: z
      .boolean()
      .default(false)
      .describe(
        'every symbol of the recording comes from a source that publishes quotes and no trades (OANDA): the ticker and bars are built from mids (FeedAdapter.quotesOnly). Needed only for a recording without #source lines: tickwire record notes quote-only sources itself',
      ),
  })
  .strict();
export type ReplayOptions = z.infer<typeof ReplayOptionsSchema>;

/** Largest number of ticks emitted in one turn of the event loop. */
const BATCH = 1000;

export class ReplayFeed implements FeedAdapter {
  readonly id: string;
  readonly #opts: ReplayOptions;
  #ticks: TickInput[] = [];
  /** per tick (same index): its source is quote-only, by the recording's `#source` lines; empty when none is */
  #quotesOnlyAt: boolean[] = [];
  /** what this feed last declared per symbol (FeedContext.setQuotesOnly) */
  readonly #declared = new Map<string, boolean>();
  #ctx: FeedContext | undefined;
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #active: Set<string> | undefined;
  #i = 0;
  #loop = 0;
  #startWall = 0;
  #startNs = 0n;
  #firstTs = 0n;
  #running = false;

  /**
   * Declared by the `quotesOnly` option, for recordings that do not say it: the host reads this
   * before the file is read. A recording made by `tickwire record` says it per source (`#source`
   * lines), and the replay then declares it per symbol as each tick's source changes
   * (FeedContext.setQuotesOnly), so one file may hold quote-only and trade sources.
   */
  readonly quotesOnly: boolean;

  constructor(id: string, opts: ReplayOptions) {
    this.quotesOnly = opts.quotesOnly;
    this.id = id;
    this.#opts = opts;
    if (opts.symbols.length > 0) this.#active = new Set(opts.symbols);
  }

  async start(ctx: FeedContext): Promise<void> {
    this.#ctx = ctx;
    ctx.status('connecting', this.#opts.file);
    try {
      const rec = readRecordingFile(this.#opts.file, this.#opts.format);
      this.#ticks = rec.ticks;
      const quoteOnlySrcs = new Set([...rec.sources.values()].filter((s) => s.quotesOnly).map((s) => s.src));
      this.#quotesOnlyAt = this.quotesOnly || quoteOnlySrcs.size === 0 ? [] : rec.srcs.map((src) => src !== undefined && quoteOnlySrcs.has(src));
    } catch (err) {
      const detail = `replay: cannot read ${this.#opts.file}: ${(err as Error).message}`;
      ctx.metrics?.error(detail);
      ctx.log.error({ feed: this.id }, detail);
      ctx.status('error', detail);
      return;
    }
    if (this.#ticks.length === 0) {
      ctx.status('error', `replay: ${this.#opts.file} holds no ticks`);
      return;
    }
    ctx.signal.addEventListener('abort', () => void this.stop(), { once: true });
    this.#running = true;
    ctx.status(
      'connected',
      `${this.#ticks.length} ticks from ${this.#opts.file} at ${this.#opts.speed === 'max' ? 'max speed' : `${this.#opts.speed}x`}${this.#opts.loop ? ', looping' : ''}`,
    );
    this.#begin();
  }

  #begin(): void {
    this.#i = 0;
    this.#firstTs = this.#ticks[0]!.ts;
    this.#startWall = performance.now();
    this.#startNs = nowNs();
    this.#schedule(0);
  }

  #schedule(delayMs: number): void {
    if (!this.#running) return;
    if (delayMs <= 0) this.#immediate = setImmediate(() => this.#pump());
    else this.#timer = setTimeout(() => this.#pump(), delayMs);
  }

  /** Emit every tick that is due, then sleep until the next one. */
  #pump(): void {
    this.#timer = undefined;
    this.#immediate = undefined;
    const ctx = this.#ctx;
    if (!ctx || !this.#running) return;
    const speed = this.#opts.speed;
    const elapsedMs = performance.now() - this.#startWall;
    let emitted = 0;
    while (this.#i < this.#ticks.length && emitted < BATCH) {
      const tick = this.#ticks[this.#i]!;
      const offsetNs = tick.ts - this.#firstTs;
      if (speed !== 'max') {
        const dueMs = Number(offsetNs) / 1e6 / speed;
        if (dueMs > elapsedMs) {
          this.#schedule(Math.max(1, Math.ceil(dueMs - elapsedMs)));
          return;
        }
      }
      const quotesOnly = this.#quotesOnlyAt[this.#i];
      this.#i++;
      if (this.#active && !this.#active.has(tick.sym)) continue;
      // the symbol's source as the recording had it: quote-only or not, from this tick on (a
      // recording of a failover switch changes it); declared only when it changes
      if (quotesOnly !== undefined && (this.#declared.get(tick.sym) ?? false) !== quotesOnly) {
        this.#declared.set(tick.sym, quotesOnly);
        ctx.setQuotesOnly?.([tick.sym], quotesOnly);
      }
      ctx.metrics?.message();
      ctx.emit(this.#restamp(tick, offsetNs));
      emitted++;
    }
    if (this.#i < this.#ticks.length) {
      this.#schedule(0);
      return;
    }
    if (this.#opts.loop) {
      this.#loop++;
      this.#begin();
      return;
    }
    this.#running = false;
    ctx.status('stopped', `end of ${this.#opts.file}`);
  }

  #restamp(tick: TickInput, offsetNs: bigint): TickInput {
    let out = tick;
    if (this.#opts.retime) {
      const ts = this.#opts.speed === 'max' ? nowNs() : this.#startNs + BigInt(Math.round(Number(offsetNs) / this.#opts.speed));
      out = { ...out, ts };
      if (out.k === 'bar') out = { ...out, t: out.t + Number((ts - tick.ts) / 1_000_000n) };
    }
    if (this.#loop > 0 && out.k === 'trade') out = { ...out, id: `${out.id}~${this.#loop}` };
    return out;
  }

  async subscribe(symbols: readonly string[]): Promise<void> {
    if (!this.#active) return; // no filter: every symbol of the file plays
    for (const s of symbols) this.#active.add(s);
  }

  async unsubscribe(symbols: readonly string[]): Promise<void> {
    this.#active ??= new Set(this.#ticks.map((t) => t.sym));
    for (const s of symbols) this.#active.delete(s);
  }

  async stop(): Promise<void> {
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
    if (this.#ctx) {
      this.#ctx.status('stopped');
      this.#ctx = undefined;
    }
  }
}
