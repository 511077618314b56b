import type { Bus, BusHandler, Unsubscribe } from '../bus/bus.js';
import { escapeSubjectToken } from '../core/symbols.js';
import type { ChannelResolver, ChannelSpec, Principal, ResolveResult } from '../fanout/channels.js';
import type { Update } from '../fanout/coalescer.js';
import type { Payload } from '../fanout/payloads.js';
import { userOf } from '../bus/private-subjects.js';
import type { StoredEvent } from '../executions/event-log.js';
import type { ExecutionRouter } from '../executions/execution-router.js';
import { decodeLiveExecution } from '../executions/execution-router.js';
import type { NotificationEvent } from './schemas.js';
import type { NotificationService, ReadState } from './notification-service.js';
import type { NotificationEntitlements } from './alert-redaction.js';
import { redactAlert } from './alert-redaction.js';

/**
 * Subjects of the notifications channel (docs/private-streams.md#notifications):
 *
 *   notif.in.<user>    notifications from other services (JetStream stream notifications.inboundStream)
 *   notif.log.<user>   the durable per-user log (JetStream stream notifications.stream)
 *   notif.live.<user>  gateway-local: the contiguous live feed of one user (never on NATS)
 */
export const NOTIF_IN_PREFIX = 'notif.in.';
export const NOTIF_LOG_PREFIX = 'notif.log.';
export const NOTIF_LIVE_PREFIX = 'notif.live.';
export const CHANNEL = 'notifications';

export const notificationsKey = (user: string): string => `notifications@${user}`;
export const notifInSubject = (user: string): string => NOTIF_IN_PREFIX + escapeSubjectToken(user);
export const notifLiveSubject = (user: string): string => NOTIF_LIVE_PREFIX + escapeSubjectToken(user);

/** Items of a replay without `since`: unread notifications and what followed; ones read by id carry `read: true`. */
function annotate(evs: StoredEvent<NotificationEvent>[], s: ReadState, view: (d: NotificationEvent) => NotificationEvent): Update<Payload>[] {
  return evs.map((e) => {
    const v = view(e.d);
    const d = v.kind === 'notification' && (e.seq <= s.readUpTo || s.readIds.has(v.id)) ? { ...v, read: true } : v;
    return { d: d as unknown as Payload, seq: e.seq };
  });
}

/**
 * `notifications`: private (bound to the token's `sub`), ordered, never dropped, resumable with
 * `since` like `executions`. Without `since` a subscriber gets every event after its read cursor:
 * all unread notifications (and the read markers and read notifications in between, so that the
 * sequence has no hole), then live events.
 *
 * With `entitlements`, a connection whose token does not see every symbol in real time gets the
 * alerts it is not entitled to redacted (alert-redaction.ts), live and replayed alike, on a key
 * of its own (`delayed:notifications@<user>~<entitlements>`, so connections of one user with other
 * tokens never share its frames, and a token refresh that changes them withdraws it:
 * src/access/session-policy.ts).
 */
export class NotificationChannelResolver implements ChannelResolver {
  constructor(
    readonly router: ExecutionRouter<NotificationEvent> | undefined,
    readonly service: NotificationService,
    readonly off?: string,
    readonly entitlements?: NotificationEntitlements,
  ) {}

  resolve(name: string, principal: Principal): ResolveResult | undefined {
    const colon = name.indexOf(':');
    const base = colon < 0 ? name : name.slice(0, colon);
    if (base !== CHANNEL) return undefined;
    if (colon >= 0) {
      return {
        ok: false,
        code: 'FORBIDDEN',
        reason: `"${CHANNEL}" is bound to the token's subject: subscribe to "${CHANNEL}" (another user's stream is never served)`,
      };
    }
    const user = principal.user;
    if (user === undefined) {
      return { ok: false, code: 'UNAUTHENTICATED', reason: `"${CHANNEL}" is a private channel: connect with a token (auth is off or no token was sent)` };
    }
    if (this.off !== undefined || !this.router) return { ok: false, code: 'UNKNOWN_CHANNEL', reason: this.off ?? 'notifications are not served here' };
    const router = this.router;
    const service = this.service;
    const ents = this.entitlements;
    const restricted = ents !== undefined && !ents.seesAll(principal);
    const access = restricted ? ents.access(principal) : undefined;
    const view = (d: NotificationEvent): NotificationEvent => (access ? redactAlert(d, access, ents!.delayMs) : d);
    const toUpdates = (evs: StoredEvent<NotificationEvent>[]): Update<Payload>[] => evs.map((e) => ({ d: view(e.d) as unknown as Payload, seq: e.seq }));
    const spec: ChannelSpec = {
      key: restricted ? `delayed:${notificationsKey(user)}~${ents.id(principal)}` : notificationsKey(user),
      name,
      subject: notifLiveSubject(user),
      mode: 'ordered',
      decode: access
        ? (payload) => {
            const u = decodeLiveExecution(payload);
            return u && { ...u, d: view(u.d as unknown as NotificationEvent) as unknown as Payload };
          }
        : decodeLiveExecution,
      replay: async (since, deliver, ctl) => {
        if (since !== undefined) return router.replay(user, since, (evs) => deliver(toUpdates(evs)), ctl);
        const s = await service.state(user);
        return router.replay(user, s.cursor, (evs) => deliver(annotate(evs, s, view)), ctl);
      },
    };
    return { ok: true, spec };
  }
}

/** The gateway hub's bus plus the gateway-local `notif.live.<user>` feeds of the notifications router. */
export class NotificationsBus implements Bus {
  constructor(
    readonly inner: Bus,
    readonly router: ExecutionRouter<NotificationEvent> | undefined,
  ) {}

  get connected(): boolean {
    return this.inner.connected;
  }

  publish(subject: string, payload: Uint8Array): void {
    this.inner.publish(subject, payload);
  }

  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe {
    if (this.router && pattern.startsWith(NOTIF_LIVE_PREFIX)) {
      const user = userOf(pattern, NOTIF_LIVE_PREFIX);
      if (user !== undefined) return this.router.subscribe(user, (p) => onMessage(pattern, p));
    }
    return this.inner.subscribe(pattern, onMessage);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  async close(): Promise<void> {}
}
