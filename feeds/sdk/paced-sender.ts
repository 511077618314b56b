import type { StreamSession } from './runner.js';

/**
 * One rate limit's window: the messages waiting for it, in the order they were given, and when the
 * messages of the current window were sent. Shared by every PacedSender of one `key` (a limit per
 * IP), private to a sender without one.
 */
interface PaceWindow {
  readonly max: number;
  readonly windowMs: number;
  queue: { owner: PacedSender; session: StreamSession; text: string; urgent: boolean }[];
  /** when the messages of the current window were sent (ms) */
  sentAt: number[];
  timer: NodeJS.Timeout | undefined;
}

/** the shared windows, by key (one provider's limit per IP; lives as long as the process) */
const windowsByKey = new Map<string, PaceWindow>();

/**
 * Outgoing control messages (subscribe, unsubscribe) paced to a provider's rate limit: sent in
 * order, at most `max` in any `windowMs`; the rest wait until the oldest send of the window has
 * left it. A message whose connection is gone by then is dropped with it (the next connection
 * subscribes afresh). `clear()` on stop cancels this sender's waiting messages (and the timer,
 * once nothing waits).
 *
 * With a `key`, every sender of that key in the process counts against one window and waits in
 * one queue (in the order the messages were given, whichever sender gave them): for a limit per
 * IP while one provider's symbols may be split over several feeds (Coinbase: `coinbase`), as
 * `connectSpacingKey` does for connection attempts. The senders of a key must agree on the limit.
 */
export class PacedSender {
  readonly #w: PaceWindow;

  constructor(max: number, windowMs: number, key?: string) {
    const shared = key === undefined ? undefined : windowsByKey.get(key);
    if (shared && (shared.max !== max || shared.windowMs !== windowMs)) {
      throw new Error(`PacedSender "${key}": ${max} in ${windowMs} ms differs from the key's limit (${shared.max} in ${shared.windowMs} ms)`);
    }
    this.#w = shared ?? { max, windowMs, queue: [], sentAt: [], timer: undefined };
    if (key !== undefined && !shared) windowsByKey.set(key, this.#w);
  }

  /**
   * Queue `text` for `session`. An `urgent` message goes ahead of the messages already waiting
   * that are not urgent (after the urgent ones): for a provider that closes a connection which has
   * not subscribed within a deadline (Coinbase: 5 s), a new connection's first subscribe must not
   * wait behind another feed's burst.
   */
  send(session: StreamSession, text: string, urgent = false): void {
    const q = this.#w.queue;
    const entry = { owner: this, session, text, urgent };
    if (!urgent) q.push(entry);
    else {
      const at = q.findIndex((m) => !m.urgent);
      if (at < 0) q.push(entry);
      else q.splice(at, 0, entry);
    }
    drain(this.#w);
  }

  /** this sender's messages waiting for the limit */
  get waiting(): number {
    let n = 0;
    for (const m of this.#w.queue) if (m.owner === this) n++;
    return n;
  }

  clear(): void {
    const w = this.#w;
    w.queue = w.queue.filter((m) => m.owner !== this);
    if (w.queue.length === 0 && w.timer) {
      clearTimeout(w.timer);
      w.timer = undefined;
    }
  }
}

function drain(w: PaceWindow): void {
  if (w.timer) return;
  const now = Date.now();
  w.sentAt = w.sentAt.filter((t) => now - t < w.windowMs);
  while (w.queue.length > 0 && w.sentAt.length < w.max) {
    const m = w.queue.shift()!;
    if (!m.session.open) continue;
    m.session.send(m.text);
    w.sentAt.push(now);
  }
  if (w.queue.length === 0) return;
  w.timer = setTimeout(
    () => {
      w.timer = undefined;
      drain(w);
    },
    Math.max(1, w.windowMs - (now - w.sentAt[0]!)),
  );
}
