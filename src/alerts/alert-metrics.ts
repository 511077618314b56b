/** Upper bounds in seconds of the fire-latency histogram. */
export const FIRE_LATENCY_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Fire latency of one alert service: from the tick that crossed a rule's level (the firing's `at`)
 * to the notification appended to the user's log, including the batching (`alerts.flushMs`), the
 * store commit and any redelivery. Kept in plain numbers (the service runs on the tick path);
 * `/metrics` reads it when scraped (src/ops/metrics.ts, `tickwire_alert_fire_latency_seconds`).
 */
export class FireLatency {
  readonly #boundsMs = FIRE_LATENCY_BUCKETS.map((s) => s * 1000);
  /** per bucket (not cumulative), the last one is +Inf */
  readonly counts: number[] = new Array<number>(FIRE_LATENCY_BUCKETS.length + 1).fill(0);
  sumMs = 0;
  count = 0;

  observeMs(ms: number): void {
    const v = ms > 0 ? ms : 0;
    let i = 0;
    while (i < this.#boundsMs.length && v > this.#boundsMs[i]!) i++;
    this.counts[i]!++;
    this.sumMs += v;
    this.count++;
  }
}

/** What /metrics reads of an alert service (src/alerts/alert-service.ts). */
export interface AlertServiceMetrics {
  readonly stats: {
    readonly ticks: number;
    readonly badPayloads: number;
    readonly commits: number;
    readonly delivered: number;
    readonly deliveryErrors: number;
    readonly commitErrors: number;
    readonly ackErrors: number;
  };
  readonly engine: {
    readonly stats: {
      readonly rules: number;
      readonly fired: number;
      readonly suppressed: number;
      readonly overBudget: number;
      readonly expired: number;
      readonly held: number;
    };
  };
  readonly outbox: number;
  readonly latency: FireLatency;
}
