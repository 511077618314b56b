/**
 * Read lag of one connection, measured with the gateway's own WebSocket pings.
 *
 * A client that stops reading its socket (a frozen tab, a paused debugger, a blocked event loop)
 * leaves what the gateway sends in the kernel's socket buffers: uWS sees no backpressure until
 * those are full, which at a few busy channels takes many seconds of quotes. A ping queued behind
 * that data is answered (RFC 6455 5.5.2: every client answers a ping with a pong; browsers and
 * the `ws` package do it themselves) only once the client has read everything in front of it,
 * so the age of the oldest unanswered ping is how far behind the client reads.
 *
 * A client is held to this measure once it has answered one of these pings: one whose stack
 * never answers is not treated as lagging (the idle timeout is what closes a dead one).
 */
export class ReadLagProbe {
  #next = 0;
  #lastSentAt = Number.NEGATIVE_INFINITY;
  #answered = false;
  /** pings sent and not answered yet, oldest first (a pong answers every ping before it too) */
  readonly #outstanding: { tag: string; sentAt: number }[] = [];

  /** The payload of a ping to send now (none is outstanding and `everyMs` have passed), or undefined. */
  due(now: number, everyMs: number): string | undefined {
    if (this.#outstanding.length > 0 || now - this.#lastSentAt < everyMs) return undefined;
    return this.mark(now);
  }

  /**
   * The payload of a ping to send now whatever is outstanding: sent when a connection is paused,
   * its pong tells that the client has read everything sent before the pause.
   */
  mark(now: number): string {
    const tag = `tw${(this.#next++).toString(36)}`;
    // a client that answers nothing keeps at most a few entries: the oldest one is what counts
    if (this.#outstanding.length >= 4) this.#outstanding.splice(1, 1);
    this.#outstanding.push({ tag, sentAt: now });
    this.#lastSentAt = now;
    return tag;
  }

  /** A pong arrived; true when it answers one of our pings (uWS's own pings have an empty payload). */
  onPong(payload: string): boolean {
    const i = this.#outstanding.findIndex((p) => p.tag === payload);
    if (i < 0) return false;
    this.#outstanding.splice(0, i + 1);
    this.#answered = true;
    return true;
  }

  /** ms since the oldest unanswered ping was sent; 0 when none is, or before the first answer. */
  lag(now: number): number {
    const oldest = this.#outstanding[0];
    return this.#answered && oldest ? now - oldest.sentAt : 0;
  }

  /** a ping is still unanswered */
  get pending(): boolean {
    return this.#outstanding.length > 0;
  }
}
