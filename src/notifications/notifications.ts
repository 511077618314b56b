import type { BudgetLedger, ReplayBudgetOptions } from '../executions/replay-budget.js';
import type { Bus } from '../bus/bus.js';
import type { Config } from '../core/config.js';
import type { ChannelResolver } from '../fanout/channels.js';
import { DisabledEventLog, MemoryEventLog } from '../executions/event-log.js';
import type { EventLog } from '../executions/event-log.js';
import { ExecutionRouter } from '../executions/execution-router.js';
import { JetStreamEventLog } from '../executions/jetstream-event-log.js';
import { RedisEventLog } from '../executions/redis-event-log.js';
import { consumeNotificationInbound } from './inbound-consumer.js';
import { NOTIF_IN_PREFIX, NOTIF_LOG_PREFIX, NotificationChannelResolver, NotificationsBus } from './notification-channel.js';
import { NotificationService } from './notification-service.js';
import type { NotificationEvent } from './schemas.js';
import type { NotificationEntitlements } from './alert-redaction.js';

export interface NotificationsContext {
  config: Readonly<Config>;
  /** the real bus (NatsBus in NATS mode: JetStream rides on its connection) */
  bus: Bus;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** this process serves clients: run the router (live feeds, replays) and consume notif.in */
  gateway: boolean;
  /** a log kept elsewhere, used as it is (an embedded gateway worker: the main thread's, through its port) */
  eventLog?: EventLog<NotificationEvent>;
  /** connections' entitlements: alerts on symbols a connection may not see are redacted (alert-redaction.ts) */
  entitlements?: NotificationEntitlements;
  /** the ledger of the replay budget, for its rates (a gateway worker: the process's SharedBudgetLedger, shared with the other workers) */
  replayLedger?: (opts: ReplayBudgetOptions) => BudgetLedger;
}

/** Everything behind the `notifications` channel for one process. */
export interface Notifications {
  readonly service: NotificationService;
  readonly router: ExecutionRouter<NotificationEvent> | undefined;
  /** the `notifications` channel resolver (put it before the market resolvers) */
  readonly resolver: ChannelResolver;
  /** the hub's bus with the gateway-local `notif.live.<user>` feeds */
  wrapBus(inner: Bus): Bus;
  readonly ready: boolean;
  close(): Promise<void>;
}

/**
 * Open the notifications log (JetStream on NATS, Redis when embedded with REDIS_URL, memory
 * otherwise: the same three logs as executions, with their own stream, subjects, keys and
 * limits), its router on a gateway, and the notif.in consumer.
 */
export async function buildNotifications(ctx: NotificationsContext): Promise<Notifications> {
  const { config } = ctx;
  const cfg = config.notifications;
  const retention = { maxPerUser: cfg.maxPerUser, retentionMs: cfg.retentionSec * 1000 };
  const nats = ctx.bus.streams && !ctx.eventLog ? await ctx.bus.streams.jetStream() : undefined;
  let log: EventLog<NotificationEvent>;
  let off: string | undefined;
  if (ctx.eventLog) {
    log = ctx.eventLog;
  } else if (ctx.bus.streams && !nats) {
    off = 'notifications are not available here: the NATS server runs without JetStream';
    ctx.log.warn({}, 'notifications are off: the NATS server has no JetStream (start nats-server with -js)');
    log = new DisabledEventLog<NotificationEvent>(off);
  } else if (nats) {
    log = await JetStreamEventLog.open<NotificationEvent>(nats, {
      ...retention,
      stream: cfg.stream,
      inboundStream: cfg.inboundStream,
      logPrefix: NOTIF_LOG_PREFIX,
      inPrefix: NOTIF_IN_PREFIX,
      dedupWindowMs: cfg.dedupWindowSec * 1000,
      replicas: cfg.replicas,
      onError: (err, what) => ctx.log.warn({ err }, `notifications ${what} failed; retrying`),
      connected: () => ctx.bus.connected,
    });
  } else if (config.redisUrl) {
    log = new RedisEventLog<NotificationEvent>({
      ...retention,
      url: config.redisUrl,
      keyPrefix: cfg.redisKeyPrefix,
      ackReplicas: config.redis.ackReplicas,
      ackTimeoutMs: config.redis.ackTimeoutMs,
      commandTimeoutMs: config.redis.commandTimeoutMs,
    });
  } else {
    log = new MemoryEventLog<NotificationEvent>(retention);
  }
  const budget = { perUserPerSec: config.executions.replayPerUserPerSec, perGatewayPerSec: config.executions.replayPerGatewayPerSec };
  const router = ctx.gateway
    ? new ExecutionRouter<NotificationEvent>({
        log,
        snapshotEvents: 0,
        pageSize: config.executions.replayPageSize,
        budget,
        ...(ctx.replayLedger ? { budgetLedger: ctx.replayLedger(budget) } : {}),
      })
    : undefined;
  // read-state scans of a gateway's users pace with their replays (the router's budget)
  const service = new NotificationService(log, { maxPerUser: cfg.maxPerUser, ...(router ? { budget: router.budget } : {}) });
  const stops: (() => void)[] = [];
  if (log instanceof JetStreamEventLog && ctx.gateway && cfg.consumeInbound) {
    stops.push(consumeNotificationInbound({ jsm: log.manager, js: log.client, stream: cfg.inboundStream, notifications: service, log: ctx.log }));
  }
  const resolver = new NotificationChannelResolver(router, service, off, ctx.entitlements);
  return {
    service,
    router,
    resolver,
    wrapBus: (inner) => new NotificationsBus(inner, router),
    get ready() {
      return log.ready;
    },
    async close() {
      for (const s of stops.splice(0)) s();
      router?.close();
      await log.close();
    },
  };
}
