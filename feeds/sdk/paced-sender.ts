import type { StreamSession } from './runner.js';

/**
 * Outgoing control messages (subscribe, unsubscribe) paced to a provider's rate limit: sent in
 * order, at most `max` in any `windowMs`; the rest wait until the oldest send of the window has
 * left it. A message whose connection is gone by then is dropped with it (the next connection
 * subscribes afresh). `clear()` on stop cancels the timer.
 */
export class PacedSender {
  readonly #max: number;
  readonly #windowMs: number;
  #queue: { session: StreamSession; text: string }[] = [];
  /** when the messages of the current window were sent (ms) */
  #sentAt: number[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(max: number, windowMs: number) {
    this.#max = max;
    this.#windowMs = windowMs;
  }

  send(session: StreamSession, text: string): void {
    this.#queue.push({ session, text });
    this.#drain();
  }

  /** messages waiting for the limit */
  get waiting(): number {
    return this.#queue.length;
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#queue = [];
  }

  #drain(): void {
    if (this.#timer) return;
    const now = Date.now();
    this.#sentAt = this.#sentAt.filter((t) => now - t < this.#windowMs);
    while (this.#queue.length > 0 && this.#sentAt.length < this.#max) {
      const m = this.#queue.shift()!;
      if (!m.session.open) continue;
      m.session.send(m.text);
      this.#sentAt.push(now);
    }
    if (this.#queue.length === 0) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#drain();
      },
      Math.max(1, this.#windowMs - (now - this.#sentAt[0]!)),
    );
  }
}
