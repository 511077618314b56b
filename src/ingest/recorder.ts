import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { Bus, Unsubscribe } from '../bus/bus.js';
import { marketSubject } from '../bus/subjects.js';
import { decodeTick } from '../codec/tick-codec.js';
import { ConfigError } from '../core/errors.js';
import { escapeSubjectToken } from '../core/symbols.js';
import type { MarketChannelKind } from '../core/schema.js';
import { csvHeader, formatOf, tickToCsvRow, tickToJsonLine } from '../../feeds/replay/format.js';
import type { RecordingFormat } from '../../feeds/replay/format.js';

/**
 * Writes normalized ticks from the bus to a recording (JSON lines or CSV) that the replay adapter
 * plays back. It listens like a gateway does, so it records any feed running anywhere on the bus.
 *
 * Channels are protocol channel names with `*` allowed for the symbol: `trade:BTC-USD`,
 * `quote:*`, `bar.1m:AAPL`, `status:*`. By default trades, quotes and trading status of every symbol are recorded (tickers
 * and engine-built bars are derived again when the recording is replayed).
 */
export const RECORDABLE_KINDS: readonly MarketChannelKind[] = ['trade', 'quote', 'bar.1s', 'bar.1m', 'status'];
/** trading status too: a replay without it would show a halted symbol as trading */
export const DEFAULT_RECORD_CHANNELS = ['trade:*', 'quote:*', 'status:*'];

export interface RecorderOptions {
  bus: Bus;
  /** output file (overwritten) */
  out: string;
  format?: RecordingFormat | 'auto';
  channels?: readonly string[];
}

/** Bus subject patterns for recording channels (`KIND:SYMBOL`, SYMBOL may be `*`). */
export function recordPatterns(channels: readonly string[]): string[] {
  return channels.map((ch) => {
    const i = ch.indexOf(':');
    const kind = (i > 0 ? ch.slice(0, i) : ch) as MarketChannelKind;
    const sym = i > 0 ? ch.slice(i + 1) : '*';
    if (!RECORDABLE_KINDS.includes(kind)) {
      throw new ConfigError(`record --channels: "${ch}": the kind must be one of ${RECORDABLE_KINDS.join(', ')} (e.g. trade:BTC-USD or quote:*)`);
    }
    if (!sym) throw new ConfigError(`record --channels: "${ch}": name a symbol or * after the colon`);
    // the asset class is a subject token of its own: match any, so no instrument registry is needed
    const subject = marketSubject('stock', kind, 'X').split('.');
    subject[1] = '*';
    subject[3] = sym === '*' ? '*' : escapeSubjectToken(sym);
    return subject.join('.');
  });
}

export class Recorder {
  readonly out: string;
  readonly format: RecordingFormat;
  #count = 0;
  #errors = 0;
  readonly #stream: WriteStream;
  readonly #unsubs: Unsubscribe[] = [];
  #closed: Promise<void> | undefined;

  constructor(opts: RecorderOptions) {
    this.out = opts.out;
    this.format = formatOf(opts.out, opts.format ?? 'auto');
    const patterns = recordPatterns(opts.channels && opts.channels.length > 0 ? opts.channels : DEFAULT_RECORD_CHANNELS);
    this.#stream = createWriteStream(opts.out, { flags: 'w' });
    this.#stream.on('error', () => this.#errors++);
    if (this.format === 'csv') this.#stream.write(csvHeader() + '\n');
    for (const p of patterns) this.#unsubs.push(opts.bus.subscribe(p, (_subject, payload) => this.#write(payload)));
  }

  /** ticks written so far */
  get count(): number {
    return this.#count;
  }

  get errors(): number {
    return this.#errors;
  }

  #write(payload: Uint8Array): void {
    try {
      const tick = decodeTick(payload);
      this.#stream.write((this.format === 'csv' ? tickToCsvRow(tick) : tickToJsonLine(tick)) + '\n');
      this.#count++;
    } catch {
      this.#errors++;
    }
  }

  /** Stop listening and flush the file. */
  close(): Promise<void> {
    this.#closed ??= new Promise<void>((resolve) => {
      for (const u of this.#unsubs.splice(0)) u();
      this.#stream.end(() => resolve());
    });
    return this.#closed;
  }
}
