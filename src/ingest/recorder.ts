import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { Bus, Unsubscribe } from '../bus/bus.js';
import { FEED_HEALTH_PATTERN, marketSubject } from '../bus/subjects.js';
import { decodeBusMessage, decodeTick } from '../codec/tick-codec.js';
import { ConfigError } from '../core/errors.js';
import { escapeSubjectToken } from '../core/symbols.js';
import type { MarketChannelKind } from '../core/schema.js';
import { csvHeader, formatOf, sourceLine, tickToCsvRow, tickToJsonLine } from '../../feeds/replay/format.js';
import type { FeedHealthSnapshot } from '../../feeds/sdk/health.js';
import type { RecordingFormat } from '../../feeds/replay/format.js';

/**
 * Writes normalized ticks from the bus to a recording (JSON lines or CSV) that the replay adapter
 * plays back. It listens like a gateway does, so it records any feed running anywhere on the bus.
 *
 * Channels are protocol channel names with `*` allowed for the symbol: `trade:BTC-USD`,
 * `quote:*`, `bar.1m:AAPL`, `status:*`. By default trades, quotes and trading status of every symbol are recorded (tickers
 * and engine-built bars are derived again when the recording is replayed).
 *
 * What the ticks cannot say about their source is noted too: each feed that publishes quotes
 * and no trades (FeedAdapter.quotesOnly, OANDA) gets a `#source {"src":ID,"quotesOnly":true}`
 * line, learned from the feed health every feed process publishes on the bus (`quotesOnly`,
 * every second and on each state change), so a replay builds its symbols' ticker and bars from
 * mids as the live feed did, with no option to set.
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
  /** a feed was noted in the recording as quote-only (a `#source` line written) */
  onQuotesOnlySource?: (feedId: string) => void;
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
  /** the feeds noted in the file as quote-only */
  readonly #quotesOnlySources = new Set<string>();
  readonly #onQuotesOnlySource: ((feedId: string) => void) | undefined;
  #closed: Promise<void> | undefined;

  constructor(opts: RecorderOptions) {
    this.out = opts.out;
    this.format = formatOf(opts.out, opts.format ?? 'auto');
    this.#onQuotesOnlySource = opts.onQuotesOnlySource;
    const patterns = recordPatterns(opts.channels && opts.channels.length > 0 ? opts.channels : DEFAULT_RECORD_CHANNELS);
    this.#stream = createWriteStream(opts.out, { flags: 'w' });
    this.#stream.on('error', () => this.#errors++);
    if (this.format === 'csv') this.#stream.write(csvHeader() + '\n');
    for (const p of patterns) this.#unsubs.push(opts.bus.subscribe(p, (_subject, payload) => this.#write(payload)));
    this.#unsubs.push(opts.bus.subscribe(FEED_HEALTH_PATTERN, (_subject, payload) => this.#onHealth(payload)));
  }

  /** feeds noted in the recording as quote-only so far */
  get quotesOnlySources(): readonly string[] {
    return [...this.#quotesOnlySources];
  }

  #onHealth(payload: Uint8Array): void {
    let snap: FeedHealthSnapshot;
    try {
      snap = decodeBusMessage<FeedHealthSnapshot>(payload);
    } catch {
      return; // a malformed report is the gateway's concern (FeedHealthView), not the recording's
    }
    if (snap?.quotesOnly !== true || typeof snap.id !== 'string' || !snap.id || this.#quotesOnlySources.has(snap.id)) return;
    this.#quotesOnlySources.add(snap.id);
    this.#stream.write(sourceLine({ src: snap.id, quotesOnly: true }) + '\n');
    this.#onQuotesOnlySource?.(snap.id);
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
