import type { FeedState } from './adapter.js';
import { redactText } from '../../src/core/secrets.js';
import { toWellFormed } from '../../src/protocol/text.js';

/**
 * Per-feed health as published on the bus (`feed.health.<feedId>`, MessagePack) by the process
 * running the feed, and served by every gateway at `GET /v1/feeds`. Times are ms since the epoch
 * on the feed process's clock; ages are computed by the publisher at `t`.
 */
export interface FeedHealthSnapshot {
  id: string;
  /** adapter type (`binance`, `replay`, ...) when it differs from the id */
  adapter?: string;
  state: FeedState;
  detail?: string;
  /** when `state` last changed */
  since: number;
  startedAt: number;
  /** last provider message of any kind (data, heartbeat, control) */
  lastMessageAt?: number;
  lastMessageAgeMs?: number;
  /** last tick handed to the engine */
  lastTickAt?: number;
  messages: number;
  ticks: number;
  messagesPerSec: number;
  ticksPerSec: number;
  reconnects: number;
  /** provider sequence gaps detected, and messages known to be lost in them */
  gaps: number;
  missed: number;
  errors: number;
  lastError?: string;
  lastErrorAt?: number;
  /**
   * the feed publishes quotes and no trades (FeedAdapter.quotesOnly): its symbols' ticker and bars
   * are built from mids. `tickwire record` notes it in the recording (docs/feeds.md, "Recording
   * and replay")
   */
  quotesOnly?: true;
  /** failover roles of this feed: which symbols it is primary/backup for and whether it is serving them */
  failover?: { symbol: string; role: 'primary' | 'backup'; active: boolean }[];
  host?: string;
  pid?: number;
  /** snapshot time */
  t: number;
}

/** Counts and rates for one feed; cheap enough to call on every message. */
export class FeedHealthTracker {
  readonly id: string;
  readonly adapter: string | undefined;
  #state: FeedState = 'starting';
  #detail: string | undefined;
  #since = Date.now();
  readonly #startedAt = Date.now();
  #lastMessageAt: number | undefined;
  #lastTickAt: number | undefined;
  #messages = 0;
  #ticks = 0;
  #reconnects = 0;
  #gaps = 0;
  #missed = 0;
  #errors = 0;
  #lastError: string | undefined;
  #lastErrorAt: number | undefined;
  #explicitMessages = false;
  #rateAt = Date.now();
  #rateMessages = 0;
  #rateTicks = 0;
  #mps = 0;
  #tps = 0;

  constructor(id: string, adapter?: string) {
    this.id = id;
    this.adapter = adapter !== undefined && adapter !== id ? adapter : undefined;
  }

  get state(): FeedState {
    return this.#state;
  }

  setState(state: FeedState, detail?: string): boolean {
    const changed = state !== this.#state;
    if (changed) this.#since = Date.now();
    this.#state = state;
    this.#detail = detail === undefined ? undefined : healthText(detail);
    return changed;
  }

  message(): void {
    this.#explicitMessages = true;
    this.#messages++;
    this.#lastMessageAt = Date.now();
  }

  tick(): void {
    this.#ticks++;
    const now = Date.now();
    this.#lastTickAt = now;
    // adapters that do not report raw messages: every tick is one message
    if (!this.#explicitMessages) {
      this.#messages++;
      this.#lastMessageAt = now;
    }
  }

  reconnect(): void {
    this.#reconnects++;
  }

  gap(missed = 1): void {
    this.#gaps++;
    this.#missed += Math.max(0, missed);
  }

  error(detail: string): void {
    this.#errors++;
    this.#lastError = healthText(detail, 500);
    this.#lastErrorAt = Date.now();
  }

  snapshot(extra: Partial<FeedHealthSnapshot> = {}): FeedHealthSnapshot {
    const now = Date.now();
    const dt = now - this.#rateAt;
    if (dt >= 1000) {
      this.#mps = ((this.#messages - this.#rateMessages) * 1000) / dt;
      this.#tps = ((this.#ticks - this.#rateTicks) * 1000) / dt;
      this.#rateAt = now;
      this.#rateMessages = this.#messages;
      this.#rateTicks = this.#ticks;
    }
    const s: FeedHealthSnapshot = {
      id: this.id,
      state: this.#state,
      since: this.#since,
      startedAt: this.#startedAt,
      messages: this.#messages,
      ticks: this.#ticks,
      messagesPerSec: Math.round(this.#mps * 10) / 10,
      ticksPerSec: Math.round(this.#tps * 10) / 10,
      reconnects: this.#reconnects,
      gaps: this.#gaps,
      missed: this.#missed,
      errors: this.#errors,
      t: now,
      ...extra,
    };
    if (this.adapter) s.adapter = this.adapter;
    if (this.#detail !== undefined) s.detail = this.#detail;
    if (this.#lastMessageAt !== undefined) {
      s.lastMessageAt = this.#lastMessageAt;
      s.lastMessageAgeMs = now - this.#lastMessageAt;
    }
    if (this.#lastTickAt !== undefined) s.lastTickAt = this.#lastTickAt;
    if (this.#lastError !== undefined) s.lastError = this.#lastError;
    if (this.#lastErrorAt !== undefined) s.lastErrorAt = this.#lastErrorAt;
    return s;
  }
}

/**
 * Health text (`detail`, `lastError`) quotes provider messages, which may hold a lone surrogate;
 * health travels as MessagePack on the bus and as JSON at /v1/feeds, so such text is made
 * well-formed (U+FFFD, as src/ingest/well-formed-tick.ts does for ticks). Cut to `max` code
 * units without splitting a surrogate pair. Credentials are redacted.
 */
export function healthText(text: string, max = Infinity): string {
  // anyone who reaches /health or /v1/feeds reads it: a credential a message quotes (a provider
  // URL with its API key, a token echoed in a refusal) is hidden first (src/core/secrets.ts)
  const s = redactText(text);
  let out = s.length > max ? s.slice(0, max) : s;
  // a cut between the halves of a pair leaves a lone high surrogate at the end: drop it
  if (out.length < s.length && /[\uD800-\uDBFF]$/.test(out)) out = out.slice(0, -1);
  return toWellFormed(out);
}
