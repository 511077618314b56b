import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { ChannelResolver, ChannelSpec, Principal, ResolveResult } from '../fanout/channels.js';
import type { Payload } from '../fanout/payloads.js';
import { DELAYED_PREFIX } from '../bus/private-subjects.js';
import { BAR_INTERVAL_MS, barIntervalOf } from '../core/schema.js';
import { calendarOf } from '../core/trading-day.js';
import { entitlementsOf } from './jwt-authenticator.js';

/**
 * Market channels with entitlements: wraps the market resolver and checks the principal's
 * entitlements for the channel's symbol. Real time passes through; delayed access gets the same
 * channel name served from a delay line (key `delayed:<channel>`, subject `delayed.<subject>`,
 * payloads carry `"delayed": <ms>`, no stored snapshot since that would be real time); no access
 * is FORBIDDEN in the ack.
 */
export class EntitledMarketResolver implements ChannelResolver {
  readonly #inner: ChannelResolver;
  readonly #registry: InstrumentRegistry;
  readonly #cfg: Config['auth'];
  readonly #delayed = new Map<string, ChannelSpec>();

  constructor(inner: ChannelResolver, registry: InstrumentRegistry, cfg: Config['auth']) {
    this.#inner = inner;
    this.#registry = registry;
    this.#cfg = cfg;
  }

  resolve(name: string, principal: Principal): ResolveResult | undefined {
    const r = this.#inner.resolve(name, principal);
    if (!r || !r.ok) return r;
    const symbol = name.slice(name.indexOf(':') + 1);
    const inst = this.#registry.get(symbol);
    if (!inst) return r;
    const access = entitlementsOf(principal, this.#cfg).access(symbol, inst.assetClass);
    if (access === 'realtime') return r;
    if (access === 'none') {
      return { ok: false, code: 'FORBIDDEN', reason: `not entitled to ${symbol} (${inst.assetClass}): the token's entitlements do not include it` };
    }
    return { ok: true, spec: this.#delayedSpec(r.spec) };
  }

  #delayedSpec(spec: ChannelSpec): ChannelSpec {
    let d = this.#delayed.get(spec.key);
    if (d) return d;
    const delayMs = this.#cfg.delayMs;
    d = {
      key: `delayed:${spec.key}`,
      name: spec.name,
      subject: DELAYED_PREFIX + spec.subject,
      mode: spec.mode,
      decode(payload) {
        const u = spec.decode(payload);
        if (!u) return undefined;
        const out: Payload = { ...u.d, delayed: delayMs };
        return { ...u, d: out };
      },
    };
    const history = spec.history;
    const interval = spec.mode === 'bar' ? (barIntervalOf(spec.name.slice(0, spec.name.indexOf(':'))) ?? '1s') : undefined;
    const iv = interval ? BAR_INTERVAL_MS[interval] : 0;
    // a day bar lasts the instrument's trading day, which is 23 or 25 hours when its time zone
    // changes clocks: it ended when the day that holds `at` started
    const calendar = interval === '1d' ? calendarOf(this.#registry.get(spec.name.slice(spec.name.indexOf(':') + 1))) : undefined;
    const endedBefore = (at: number): number => (calendar ? calendar.startOf(at) : at - iv + 1);
    if (history) {
      // delayed bar history: only bars that ended delayMs ago, each as the store held it then (a
      // bar revised since by a correction, a cancel or a late trade is its earlier version, or
      // none), flagged like the delayed live bars
      d.history = async (q) => {
        const asOf = Date.now() - delayMs;
        const cap = endedBefore(asOf);
        const bars = await history({ ...q, to: Math.min(q.to ?? cap, cap), asOf });
        return bars.map((b) => ({ ...b, delayed: delayMs }));
      };
    }
    this.#delayed.set(spec.key, d);
    return d;
  }
}
