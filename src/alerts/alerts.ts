import type { Bus, BusHandler, Unsubscribe } from '../bus/bus.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import { MarketDelay } from '../fanout/market-delay.js';
import type { ChannelResolver, Principal } from '../fanout/channels.js';
import type { ExtensionOp } from '../gateway/connection.js';
import { entitlementGrant, entitlementsOf } from '../access/jwt-authenticator.js';
import type { Access } from '../access/entitlements.js';
import { createHash } from 'node:crypto';
import type { NotificationEntitlements } from '../notifications/alert-redaction.js';
import { seesAllRealtime } from '../fanout/portfolio-view.js';
import { AccessReports } from './access-reports.js';
import { TickwireError } from '../core/errors.js';
import type { NotificationService } from '../notifications/notification-service.js';
import { buildNotifications } from '../notifications/notifications.js';
import type { Notifications, NotificationsContext } from '../notifications/notifications.js';
import type { NotificationEvent, NotificationItem } from '../notifications/schemas.js';
import type { EventLog } from '../executions/event-log.js';
import type { AlertsApi } from './alert-api.js';
import { clientRuleId, firingTitle, LocalAlerts, BusAlertsClient, serveAlertsRpc } from './alert-api.js';
import type { AlertFiring } from './alert-engine.js';
import { AlertService } from './alert-service.js';
import { MemoryAlertStore, RedisAlertStore } from './alert-store.js';
import type { AlertStore } from './alert-store.js';
import { DelayFloor } from './delay-floor.js';
import { firstSight } from '../core/first-sight.js';

export interface AlertsContext {
  config: Readonly<Config>;
  /** the real bus */
  bus: Bus;
  registry: InstrumentRegistry;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /**
   * `service`: evaluate rules here (embedded default, or the `tickwire alerts` process, which then
   * also answers `alerts.rpc`); `client`: a gateway in NATS mode that reaches the service over NATS
   */
  role: 'service' | 'client';
  /** where firings go (the user's notifications log); required for the service role */
  notifications?: NotificationService;
}

export interface Alerts {
  readonly api: AlertsApi;
  /** the evaluating services (service role only): real time and delayed */
  readonly services: { realtime: AlertService; delayed: AlertService } | undefined;
  readonly ready: boolean;
  close(): Promise<void>;
}

/** The market bus seen through a delay line: rules of delayed users evaluate on delayed ticks. */
class DelayedBus implements Bus {
  /** while true, ticks are not passed on: the delayed rules are held (delay-floor.ts) */
  held: () => boolean = () => false;
  constructor(
    readonly inner: Bus,
    readonly delay: MarketDelay,
  ) {}
  get connected(): boolean {
    return this.inner.connected;
  }
  publish(subject: string, payload: Uint8Array): void {
    this.inner.publish(subject, payload);
  }
  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe {
    return this.delay.subscribe(pattern, (subject, payload) => {
      if (!this.held()) onMessage(subject, payload);
    });
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  async close(): Promise<void> {
    this.delay.close();
  }
}

/**
 * The notification of one alert firing: id `#alert:<firing id>` so a redelivered firing is stored
 * once. `delayedMs`: the rule runs on delayed data, this many ms behind the market (`data.delayed`
 * and `data.delayMs`).
 */
export function firingNotification(f: AlertFiring, rule: Parameters<typeof firingTitle>[1], delayedMs: number | undefined): NotificationItem {
  const ruleId = clientRuleId(f.ruleId);
  const n = f.id.slice(f.id.lastIndexOf(':') + 1);
  return {
    kind: 'notification',
    id: `#alert:${f.id}`,
    type: 'alert',
    title: firingTitle(f, rule),
    body: `${f.symbol} ${f.kind === 'price' ? 'at' : f.kind === 'change' ? 'moved' : 'spread'} ${f.value}${f.kind === 'change' ? ' %' : ''} (was ${f.previous})`,
    priority: 'high',
    data: {
      rule: ruleId,
      firing: Number(n),
      symbol: f.symbol,
      kind: f.kind,
      value: f.value,
      previous: f.previous,
      level: f.level,
      at: f.at,
      ...(delayedMs !== undefined ? { delayed: true, delayMs: delayedMs } : {}),
    },
    t: f.at,
  };
}

/**
 * Build the alerts part of a process. Service role: two AlertServices (real time on the bus,
 * delayed through a delay line of auth.delayMs), their stores (Redis when REDIS_URL is set, so
 * a restart neither loses nor re-fires; memory otherwise), firings into the notifications log,
 * and in NATS mode the `alerts.rpc` responder. Client role: the API over NATS.
 */
export async function buildAlerts(ctx: AlertsContext): Promise<Alerts> {
  const { config } = ctx;
  const requests = ctx.bus.requests;
  if (ctx.role === 'client') {
    if (!requests) throw new Error('buildAlerts: the client role needs a bus with request/reply (NATS)');
    return {
      api: new BusAlertsClient(requests, config.alerts.requestTimeoutMs, config.auth.delayMs),
      services: undefined,
      ready: true,
      close: async () => undefined,
    };
  }
  const notifications = ctx.notifications;
  if (!notifications) throw new Error('buildAlerts: the service role needs the notifications service');
  const store = (suffix: string): AlertStore =>
    config.redisUrl
      ? new RedisAlertStore(config.redisUrl, config.alerts.redisKeyPrefix + suffix, {
          commandTimeoutMs: config.redis.commandTimeoutMs,
          pingIntervalMs: config.redis.pingIntervalMs,
        })
      : new MemoryAlertStore();
  const delay = new MarketDelay(ctx.bus, { delayMs: config.auth.delayMs, maxBuffered: config.auth.delayMaxBuffered });
  const delayedBus = new DelayedBus(ctx.bus, delay);
  const stores = { realtime: store(''), delayed: store('delayed:') };
  const services: { realtime?: AlertService; delayed?: AlertService } = {};
  const make = (which: 'realtime' | 'delayed'): AlertService => {
    const svc: AlertService = new AlertService({
      bus: which === 'realtime' ? ctx.bus : delayedBus,
      registry: ctx.registry,
      store: stores[which],
      config: config.alerts,
      log: ctx.log,
      onFire: async (f, { redelivery }) => {
        // a redelivered firing may be in the log already: a log whose id deduplication is bounded
        // (JetStream's duplicate window, a new stream leader after a node kill) looks for it since
        // the firing's time, so the user still sees it once
        await notifications.record(
          f.user,
          firingNotification(f, svc.engine.get(f.ruleId)?.rule, which === 'delayed' ? delay.delayMs : undefined),
          redelivery ? { redeliveredSince: f.at } : undefined,
        );
      },
    });
    return svc;
  };
  const stops: (() => void)[] = [];
  // NATS mode: gateways elsewhere may run another auth.delayMs than this process (delay-floor.ts)
  let floor: DelayFloor | undefined;
  try {
    if (requests) {
      const stored = stores.delayed;
      const f = new DelayFloor({ ownMs: delay.delayMs, storedMs: await stored.readDelay(), write: (ms) => stored.writeDelay(ms) });
      delayedBus.held = () => f.held;
      floor = f;
    }
    services.realtime = make('realtime');
    services.delayed = make('delayed');
    await services.realtime.start();
    await services.delayed.start();
    if (floor?.held) {
      const rules = services.delayed.engine.stats.rules;
      if (rules === 0) floor.release();
      else
        ctx.log.error(
          { rules, acceptedDelayMs: floor.storedMs, delayMs: delay.delayMs },
          `${rules} delayed alert rules are held, not evaluated: they were accepted through gateways delaying data by ${floor.storedMs} ms, this alert service delays it by ${delay.delayMs} ms; ` +
            `start it with TICKWIRE_AUTH_DELAY_MS=${floor.storedMs}, or, if the gateways were lowered too, the first rule forwarded by one of them lifts the hold`,
        );
    }
  } catch (err) {
    await services.realtime?.close().catch(() => undefined);
    await services.delayed?.close().catch(() => undefined);
    await stores.realtime.close().catch(() => undefined);
    await stores.delayed.close().catch(() => undefined);
    delay.close();
    throw err;
  }
  const svcs = { realtime: services.realtime, delayed: services.delayed };
  // once per gateway delay seen: every refused request would repeat it
  const firstRefusedDelay = firstSight<number>(16);
  const api = new LocalAlerts({
    registry: ctx.registry,
    ...svcs,
    maxRulesPerUser: config.alerts.maxRulesPerUser,
    delayMs: delay.delayMs,
    ...(floor
      ? {
          floor,
          onReleased: (gatewayMs: number) =>
            ctx.log.info(
              { gatewayDelayMs: gatewayMs, delayMs: delay.delayMs },
              "delayed alert rules evaluated again: a gateway runs an auth.delayMs within this service's",
            ),
        }
      : {}),
    // each user's last reported entitlements (rules held for them keep `state.held` in their own store)
    access: stores.realtime,
    onEntitled: (user, r) =>
      ctx.log.info(
        { user, held: r.held, released: r.released },
        r.held > 0
          ? "alert rules held: the user's current token no longer entitles their symbols at the rules' level (not evaluated until it does)"
          : "alert rules evaluated again: the user's current token entitles their symbols",
      ),
    onShortDelay: (requestedMs, ownMs) => {
      if (!firstRefusedDelay(requestedMs)) return;
      ctx.log.error(
        { gatewayDelayMs: requestedMs, delayMs: ownMs },
        `delayed alert rules refused: a gateway runs auth.delayMs ${requestedMs} ms, this alert service ${ownMs} ms; start it with TICKWIRE_AUTH_DELAY_MS=${requestedMs}`,
      );
    },
  });
  if (requests) stops.push(serveAlertsRpc(requests, api));
  ctx.log.info({ store: stores.realtime.kind, rules: svcs.realtime.engine.stats.rules + svcs.delayed.engine.stats.rules }, 'alert service started');
  return {
    api,
    services: svcs,
    ready: true,
    async close() {
      for (const s of stops.splice(0)) s();
      await svcs.realtime.close();
      await svcs.delayed.close();
      delay.close();
      await stores.realtime.close();
      await stores.delayed.close();
    },
  };
}

export interface UserAlertsContext {
  config: Readonly<Config>;
  bus: Bus;
  registry: InstrumentRegistry;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** this process serves clients (notifications router, channel, service API) */
  gateway: boolean;
  /** this process evaluates the rules (embedded default; `tickwire alerts` in NATS mode) */
  alertService: boolean;
  /** a notifications log kept elsewhere (an embedded gateway worker: the main thread's) */
  notificationsLog?: EventLog<NotificationEvent>;
  /** an alert service running elsewhere (an embedded gateway worker: the main thread's) */
  alertsApi?: AlertsApi;
  /** where the notifications replay budget lives (a gateway worker: the process's, see NotificationsContext) */
  replayLedger?: NotificationsContext['replayLedger'];
}

/**
 * A principal's access to each symbol, for what alerts show: through the instrument registry, a
 * symbol it does not know is `none` (the alert.list and notification redaction's reading).
 */
function symbolAccess(p: Principal, auth: Config['auth'], registry: InstrumentRegistry): (symbol: string) => Access {
  const ents = entitlementsOf(p, auth);
  return (sym) => {
    const inst = registry.get(sym);
    return inst ? ents.access(inst.symbol, inst.assetClass) : 'none';
  };
}

/** Alerts and notifications for one process, wired by the composition root with a few calls. */
export interface UserAlerts {
  readonly notifications: Notifications;
  readonly alerts: Alerts | undefined;
  /** resolvers to put first: the `notifications` channel */
  readonly resolvers: ChannelResolver[];
  /** what registerServiceApi needs for the alert and notification routes */
  readonly serviceApi: { alerts?: AlertsApi; notifications: NotificationService; auth: Config['auth']; registry: InstrumentRegistry };
  wrapBus(inner: Bus): Bus;
  /** in-band ops for the user's own connection: alert.create/list/update/delete, notifications.read */
  readonly extensions: ReadonlyMap<string, ExtensionOp>;
  /**
   * A gateway learnt a connection's current token (authenticated connect, in-band `auth`): tell
   * the alert service the user's entitlements, in the background (AccessReports).
   */
  reportAccess(principal: Principal): void;
  close(): Promise<void>;
}

function ruleOf(frame: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const rule = frame.rule;
  if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) {
    throw new TickwireError('BAD_REQUEST', `${String(frame.op)}: "rule" must be an object (a rule as in docs/alerts.md, without "user")`);
  }
  return rule as Record<string, unknown>;
}

/**
 * An `alert.list` answer counts as one frame of `limits.messagesPerSec` per started this many
 * rules it lists (docs/protocol.md#alerts-and-notifications): each rule is read, redacted and
 * encoded, about 5 µs, so 50 cost about what a frame of 100 channels costs (CHANNELS_PER_FRAME).
 */
export const ALERT_RULES_PER_FRAME = 50;

/**
 * The in-band ops (docs/protocol.md#alerts-and-notifications). The user is always the
 * connection's token `sub`; entitlements are the token's, as for market channels.
 */
export function alertExtensions(
  api: AlertsApi | undefined,
  notifications: NotificationService,
  registry: InstrumentRegistry,
  auth: Config['auth'],
  requestTimeoutMs: number,
): Map<string, ExtensionOp> {
  const userOf = (p: Principal, op: string): string => {
    if (p.user === undefined) throw new TickwireError('UNAUTHENTICATED', `${op} acts on the token's user: connect with a token (or send {"op":"auth"})`);
    return p.user;
  };
  const alerts = (): AlertsApi => {
    if (!api) throw new TickwireError('ALERTS_UNAVAILABLE', 'no alert service is configured here');
    return api;
  };
  const accessOf = (p: Principal, rule: Record<string, unknown>) => {
    const inst = typeof rule.symbol === 'string' ? registry.get(rule.symbol) : undefined;
    return inst ? entitlementsOf(p, auth).access(inst.symbol, inst.assetClass) : 'realtime';
  };
  return new Map<string, ExtensionOp>([
    [
      'alert.create',
      async (p, f) => {
        const rule = ruleOf(f);
        return { alert: await alerts().create(userOf(p, 'alert.create'), rule, accessOf(p, rule)) };
      },
    ],
    [
      'alert.list',
      Object.assign(
        async (p: Principal) => {
          const listed = await alerts().list(userOf(p, 'alert.list'));
          // the service holds rules its user lost, but may not have heard of this token yet: a rule
          // this token does not entitle at its level shows no price (state.seen)
          const accessTo = symbolAccess(p, auth, registry);
          return {
            alerts: listed.map((a) => {
              const access = accessTo(a.symbol);
              if (access === 'realtime' || (access === 'delayed' && a.delayed)) return a;
              const { seen: _seen, ...state } = a.state;
              return { ...a, state, redacted: true as const };
            }),
          };
        },
        // every rule is read, redacted and encoded (about 5 µs each, 230 KB of JSON for 1000):
        // the answer counts as one frame per started ALERT_RULES_PER_FRAME rules
        {
          cost: {
            perFrame: ALERT_RULES_PER_FRAME,
            items: (reply: Record<string, unknown>) => (Array.isArray(reply.alerts) ? reply.alerts.length : 0),
            what: `an alert.list answer counts as one frame per started ${ALERT_RULES_PER_FRAME} rules it lists`,
            // one user's lists are served one after another: behind a service that does not answer,
            // each would wait out the timeouts of all those before it (32 × 3 s with the defaults)
            late: {
              afterMs: requestTimeoutMs,
              code: 'ALERTS_UNAVAILABLE',
              message: `the alert service did not answer this user's earlier alert.list within ${requestTimeoutMs} ms (alerts.requestTimeoutMs): this one was not sent; retry`,
            },
          },
        },
      ),
    ],
    [
      'alert.update',
      async (p, f) => {
        const rule = ruleOf(f);
        return { alert: await alerts().update(userOf(p, 'alert.update'), String(rule.id ?? ''), rule, accessOf(p, rule)) };
      },
    ],
    [
      'alert.delete',
      async (p, f) => {
        if (typeof f.rule !== 'string') throw new TickwireError('BAD_REQUEST', 'alert.delete: "rule" must be the id of the rule to delete');
        await alerts().remove(userOf(p, 'alert.delete'), f.rule);
        return { deleted: f.rule };
      },
    ],
    [
      'notifications.read',
      async (p, f) => {
        const { op: _op, id: _id, ...body } = f;
        return { ...(await notifications.markRead(userOf(p, 'notifications.read'), body)) };
      },
    ],
  ]);
}

/**
 * Build the notifications log (and, on a gateway, its channel) and the alert service or its
 * NATS client. Embedded: both in this process. NATS: gateways get the channel and an alerts
 * client; `tickwire alerts` gets the service, writing firings to the same JetStream log.
 */
export async function buildUserAlerts(ctx: UserAlertsContext): Promise<UserAlerts> {
  const auth = ctx.config.auth;
  const registry = ctx.registry;
  const entitlements: NotificationEntitlements = {
    access: (p) => symbolAccess(p, auth, registry),
    seesAll: (p) => {
      const ents = entitlementsOf(p, auth);
      return seesAllRealtime((sym, cls) => ents.access(sym, cls));
    },
    id: (p) =>
      createHash('sha256')
        .update(JSON.stringify(p.claims?.[auth.entitlementsClaim] ?? null))
        .digest('base64url'),
    delayMs: auth.delayMs,
  };
  const notifications = await buildNotifications({
    config: ctx.config,
    bus: ctx.bus,
    log: ctx.log,
    gateway: ctx.gateway,
    entitlements,
    ...(ctx.notificationsLog ? { eventLog: ctx.notificationsLog } : {}),
    ...(ctx.replayLedger ? { replayLedger: ctx.replayLedger } : {}),
  });
  let alerts: Alerts | undefined;
  try {
    if (ctx.alertsApi) alerts = { api: ctx.alertsApi, services: undefined, ready: true, close: async () => undefined };
    else if (ctx.alertService) alerts = await buildAlerts({ ...ctx, role: 'service', notifications: notifications.service });
    else if (ctx.gateway && ctx.bus.requests) alerts = await buildAlerts({ ...ctx, role: 'client' });
  } catch (err) {
    await notifications.close().catch(() => undefined);
    throw err;
  }
  const reports = ctx.gateway && alerts ? new AccessReports({ api: alerts.api, log: ctx.log }) : undefined;
  return {
    notifications,
    alerts,
    resolvers: [notifications.resolver],
    serviceApi: { ...(alerts ? { alerts: alerts.api } : {}), notifications: notifications.service, auth: ctx.config.auth, registry: ctx.registry },
    wrapBus: (inner) => notifications.wrapBus(inner),
    extensions: alertExtensions(alerts?.api, notifications.service, ctx.registry, ctx.config.auth, ctx.config.alerts.requestTimeoutMs),
    reportAccess: (p) => {
      if (!reports || p.user === undefined) return;
      const grant = entitlementGrant(p, auth);
      if (grant !== undefined) reports.report(p.user, grant);
    },
    async close() {
      // the alert service flushes its last firings into the log before the log closes
      await alerts?.close().catch((err: unknown) => ctx.log.warn({ err }, 'alert service close failed'));
      await notifications.close();
    },
  };
}
