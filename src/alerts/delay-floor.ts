/**
 * The delay that the delayed rules of an alert service were accepted under, kept with them.
 *
 * A gateway sends its `auth.delayMs` with each rule it forwards, and a delayed rule is refused when
 * that is longer than the service's own delay line (docs/alerts.md, Entitlements). That protects
 * new rules only: an alert service restarted with a shorter delay would run the rules it already
 * holds on fresher data than their users may see. So the longest gateway delay seen with an
 * accepted request is stored beside the rules, and a service whose own delay is shorter starts
 * with its delayed rules held: they are kept and listed, but not evaluated.
 *
 * The hold lifts when a request comes through a gateway whose delay is at most the service's:
 * the gateways were lowered too, and that delay is the new floor. A gateway still on the longer
 * delay is refused as before, so a service started with the wrong delay stays held.
 */
export class DelayFloor {
  readonly ownMs: number;
  #stored: number | undefined;
  #held: boolean;
  readonly #write: (ms: number) => Promise<void>;

  /** `storedMs`: what the store holds (undefined: nothing recorded yet) */
  constructor(opts: { ownMs: number; storedMs: number | undefined; write: (ms: number) => Promise<void> }) {
    this.ownMs = opts.ownMs;
    this.#stored = opts.storedMs;
    this.#held = opts.storedMs !== undefined && opts.storedMs > opts.ownMs;
    this.#write = opts.write;
  }

  /** delayed rules are not evaluated: they were accepted under a longer delay than this service's */
  get held(): boolean {
    return this.#held;
  }

  /** the recorded floor (ms), if any */
  get storedMs(): number | undefined {
    return this.#stored;
  }

  /** Lift the hold without evidence: there are no delayed rules to protect. */
  release(): void {
    this.#held = false;
  }

  /**
   * A create or update through a gateway whose `auth.delayMs` is `gatewayMs`, at most this
   * service's delay (a longer one is refused before). Records it when it raises the floor; while
   * held it lifts the hold and becomes the floor. Resolves once stored (a store that fails throws:
   * the request is refused rather than accepted under a delay nobody recorded). True when it
   * lifted the hold.
   */
  async observe(gatewayMs: number): Promise<boolean> {
    if (gatewayMs > this.ownMs) return false;
    const released = this.#held;
    const next = released ? gatewayMs : Math.max(this.#stored ?? gatewayMs, gatewayMs);
    if (next !== this.#stored) {
      await this.#write(next);
      this.#stored = next;
    }
    this.#held = false;
    return released;
  }
}
