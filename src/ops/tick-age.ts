import type { ChannelSpec } from '../fanout/channels.js';
import type { Payload } from '../fanout/payloads.js';

/** Upper bounds in seconds. */
export const TICK_AGE_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Age of market ticks when the gateway hub receives them: wall-clock now minus the tick's event
 * time (`t`), one observation per upstream update. A histogram kept in plain numbers (a bucket
 * scan and two additions per update); prom-client reads it at scrape time through `metric()`.
 *
 * Bars are skipped (their `t` is the bar start, not an event time). Across hosts the value
 * includes clock skew between the source, the feed process and the gateway: run NTP.
 */
export class TickAgeHistogram {
  readonly #boundsMs: Float64Array;
  readonly #counts: Float64Array;
  #sumMs = 0;
  #count = 0;

  constructor(
    readonly name = 'tickwire_tick_age_seconds',
    readonly buckets: readonly number[] = TICK_AGE_BUCKETS,
  ) {
    this.#boundsMs = Float64Array.from(buckets, (s) => s * 1000);
    this.#counts = new Float64Array(buckets.length + 1);
  }

  /** The hook for `Hub.onUpdate`. */
  readonly onUpdate = (spec: ChannelSpec, d: Payload): void => {
    if (spec.mode === 'bar') return;
    const t = d.t;
    if (typeof t !== 'number' || !spec.subject.startsWith('md.')) return;
    this.observeMs(Date.now() - t);
  };

  observeMs(ageMs: number): void {
    const ms = ageMs > 0 ? ageMs : 0;
    const bounds = this.#boundsMs;
    let i = 0;
    while (i < bounds.length && ms > bounds[i]!) i++;
    this.#counts[i]!++;
    this.#sumMs += ms;
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }

  /** A prom-client compatible metric object (register with `registry.registerMetric`). */
  metric(): object {
    const name = this.name;
    const help = 'Age of market ticks when the gateway receives them from the bus (now - event time), seconds';
    const get = async (): Promise<object> => {
      const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
      let cum = 0;
      this.buckets.forEach((le, i) => {
        cum += this.#counts[i]!;
        values.push({ metricName: `${name}_bucket`, labels: { le }, value: cum });
      });
      values.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: this.#count });
      values.push({ metricName: `${name}_sum`, labels: {}, value: this.#sumMs / 1000 });
      values.push({ metricName: `${name}_count`, labels: {}, value: this.#count });
      return { name, help, type: 'histogram', aggregator: 'sum', values };
    };
    return { name, help, type: 'histogram', aggregator: 'sum', get, reset: () => this.reset(), collect: () => undefined };
  }

  reset(): void {
    this.#counts.fill(0);
    this.#sumMs = 0;
    this.#count = 0;
  }
}
