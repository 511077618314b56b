import { decodeBusMessage } from '../codec/tick-codec.js';
import type { ChannelResolver, ChannelSpec, Principal, ResolveResult } from '../fanout/channels.js';
import type { Payload } from '../fanout/payloads.js';
import type { ExecutionRouter } from './execution-router.js';
import { decodeLiveExecution, executionsKey } from './execution-router.js';
import { execLiveSubject, portfolioSubject, SYSTEM_SUBJECT } from '../bus/private-subjects.js';
import type { AssetClass } from '../core/schema.js';
import type { SymbolAccess } from '../fanout/portfolio-view.js';
import { entitledPortfolio, seesAllRealtime } from '../fanout/portfolio-view.js';

/** The connection's entitlements, for the `portfolio` channel (default: everyone real time). */
export interface PortfolioEntitlements {
  access(principal: Principal): SymbolAccess;
  /** a name of the principal's entitlements: equal for tokens with the same entitlements claim */
  id(principal: Principal): string;
  classOf(sym: string): AssetClass | undefined;
  /** this gateway's auth.delayMs: a valuation's delayed part must be at least this old */
  delayMs: number;
  /** the portfolio service's delayed part was younger than delayMs (it was not shown) */
  onShortDelay?: (serviceDelayMs: number) => void;
}

const decodePayload = (payload: Uint8Array): { d: Payload } => ({ d: decodeBusMessage<Payload>(payload) });

/**
 * The decode of one portfolio channel: `view` makes what the channel's connections see of a
 * valuation; one that shows them nothing new (only its time differs from the last one) is
 * skipped. The service publishes when anything of a book changed, its delayed part (`dv`) too,
 * which a real-time view drops and a restricted view may not show: those used to reach clients
 * as a frame like the one before it. A channel's decode is made once per hub channel (its first
 * subscriber's spec), so what it compares with is what the channel last sent.
 */
function portfolioDecoder(view: (payload: Uint8Array) => Payload): (payload: Uint8Array) => { d: Payload } | undefined {
  let last: string | undefined;
  return (payload) => {
    const d = view(payload);
    const { t: _t, ...rest } = d as Record<string, unknown>;
    const key = JSON.stringify(rest);
    if (key === last) return undefined;
    last = key;
    return { d };
  };
}

/**
 * A real-time portfolio view: the service's valuation without its delayed part (`dv`, which only
 * restricted views are made from: src/fanout/portfolio-view.ts), so that no client receives it.
 */
const realtimePortfolio = (payload: Uint8Array): Payload => {
  const { dv: _delayed, ...d } = decodeBusMessage<Payload>(payload);
  return d;
};

/** `system`: announcements, public, never dropped (ordered), no history on subscribe. */
export const SYSTEM_CHANNEL: ChannelSpec = Object.freeze({
  key: 'system',
  name: 'system',
  subject: SYSTEM_SUBJECT,
  mode: 'ordered',
  decode: decodePayload,
  // no snapshot: joining through `replay` keeps a new subscriber out of the hub's snapshot wait,
  // where several announcements in one flush would collapse into one
  replay: async () => undefined,
});

const PRIVATE = new Set(['executions', 'portfolio']);

/**
 * `executions`, `portfolio` (bound to the token's `sub`) and `system`. A private channel's key
 * and subject include the user, so one user's stream is never another's; naming a user
 * (`executions:bob`) is refused with FORBIDDEN, and without a token with UNAUTHENTICATED.
 */
export class PrivateChannelResolver implements ChannelResolver {
  readonly #router: ExecutionRouter | undefined;
  readonly #executionsOff: string | undefined;
  readonly #entitlements: PortfolioEntitlements | undefined;

  /**
   * `executionsOff`: why the executions channel is not served here (no durable log);
   * `entitlements`: what each connection may see of the portfolio's prices
   */
  constructor(router: ExecutionRouter | undefined, executionsOff?: string, entitlements?: PortfolioEntitlements) {
    this.#router = router;
    this.#executionsOff = executionsOff;
    this.#entitlements = entitlements;
  }

  resolve(name: string, principal: Principal): ResolveResult | undefined {
    if (name === 'system') return { ok: true, spec: SYSTEM_CHANNEL };
    const colon = name.indexOf(':');
    const base = colon < 0 ? name : name.slice(0, colon);
    if (!PRIVATE.has(base)) return undefined;
    if (colon >= 0) {
      return {
        ok: false,
        code: 'FORBIDDEN',
        reason: `"${base}" is bound to the token's subject: subscribe to "${base}" (another user's stream is never served)`,
      };
    }
    const user = principal.user;
    if (user === undefined) {
      return { ok: false, code: 'UNAUTHENTICATED', reason: `"${name}" is a private channel: connect with a token (auth is off or no token was sent)` };
    }
    if (base === 'portfolio') {
      const ents = this.#entitlements;
      const access = ents?.access(principal);
      // real time for everything: the service's payload as is, one upstream key per user
      if (!ents || !access || seesAllRealtime(access)) {
        return {
          ok: true,
          spec: { key: `portfolio@${user}`, name, subject: portfolioSubject(user), mode: 'latest', decode: portfolioDecoder(realtimePortfolio) },
        };
      }
      // otherwise a key of these entitlements (`delayed:` like other restricted channels, so a token
      // refresh that changes them withdraws the subscription: src/access/session-policy.ts): they
      // decide what each valuation shows
      const decode = portfolioDecoder(
        (payload) =>
          entitledPortfolio(
            decodeBusMessage<Parameters<typeof entitledPortfolio>[0]>(payload),
            access,
            ents.classOf,
            ents.delayMs,
            ents.onShortDelay,
          ) as unknown as Payload,
      );
      return { ok: true, spec: { key: `delayed:portfolio@${user}~${ents.id(principal)}`, name, subject: portfolioSubject(user), mode: 'latest', decode } };
    }
    if (this.#executionsOff !== undefined) return { ok: false, code: 'UNKNOWN_CHANNEL', reason: this.#executionsOff };
    const router = this.#router;
    const spec: ChannelSpec = {
      key: executionsKey(user),
      name,
      subject: execLiveSubject(user),
      mode: 'ordered',
      decode: decodeLiveExecution,
      replay: router
        ? (since, deliver, ctl) => router.replay(user, since, (evs) => deliver(evs.map((e) => ({ d: e.d as unknown as Payload, seq: e.seq }))), ctl)
        : async () => undefined,
    };
    return { ok: true, spec };
  }
}
