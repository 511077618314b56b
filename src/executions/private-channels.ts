import { decodeBusMessage } from '../codec/tick-codec.js';
import type { ChannelResolver, ChannelSpec, Principal, ResolveResult } from '../fanout/channels.js';
import type { Payload } from '../fanout/payloads.js';
import type { ExecutionRouter } from './execution-router.js';
import { decodeLiveExecution, executionsKey } from './execution-router.js';
import { execLiveSubject, portfolioSubject, SYSTEM_SUBJECT } from '../bus/private-subjects.js';

const decodePayload = (payload: Uint8Array): { d: Payload } => ({ d: decodeBusMessage<Payload>(payload) });

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

  /** `executionsOff`: why the executions channel is not served here (no durable log) */
  constructor(router: ExecutionRouter | undefined, executionsOff?: string) {
    this.#router = router;
    this.#executionsOff = executionsOff;
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
      return { ok: true, spec: { key: `portfolio@${user}`, name, subject: portfolioSubject(user), mode: 'latest', decode: decodePayload } };
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
