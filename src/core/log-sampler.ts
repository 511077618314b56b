/**
 * At most one log line per `intervalMs` for an event that a client can repeat at will (a request
 * refused before any limit applies): `take` says whether a line may be written now, with how many
 * were left out since the last one. The events themselves are counted elsewhere (metrics).
 */
export class LogSampler {
  #next = -Infinity;
  #suppressed = 0;

  constructor(readonly intervalMs: number) {}

  /** `{ suppressed }` (lines left out since the last one) when a line may be written at `now`, else undefined. */
  take(now: number): { suppressed: number } | undefined {
    if (now < this.#next) {
      this.#suppressed++;
      return undefined;
    }
    this.#next = now + this.intervalMs;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { suppressed };
  }
}
