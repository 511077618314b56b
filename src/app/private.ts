import type { Bus } from '../bus/bus.js';
import { DisabledEventLog, MemoryEventLog } from '../executions/event-log.js';
import type { EventLog } from '../executions/event-log.js';
import { ExecutionRouter } from '../executions/execution-router.js';
import { ExecutionService } from '../executions/execution-service.js';
import { consumeExecutionInbound } from '../executions/inbound-consumer.js';
import { JetStreamEventLog } from '../executions/jetstream-event-log.js';
import { RedisEventLog } from '../executions/redis-event-log.js';
import { BusPortfolioClient, servePortfolioRpc } from '../portfolio/portfolio-api.js';
import type { PortfolioApi } from '../portfolio/portfolio-api.js';
import { PortfolioService } from '../portfolio/portfolio-service.js';
import { MemoryPositionStore, RedisPositionStore } from '../portfolio/position-store.js';
import { JetStreamPutRecords, MemoryPutRecords, RedisPutRecords } from '../portfolio/put-records.js';
import type { PutRecords } from '../portfolio/put-records.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { EngineContext } from './context.js';

/** The durable executions side of one process (see docs/private-streams.md). */
export interface ExecutionsParts {
  /** per-user durable log: JetStream on NATS, Redis or memory when embedded */
  readonly events: EventLog;
  /** the write side (service API, `exec.in` consumer) */
  readonly executions: ExecutionService;
  /** the gateway's per-user live feed and replays; undefined without a gateway */
  readonly router: ExecutionRouter | undefined;
}

/** The execution log, the service that writes it, and (with a gateway) the router and inbound consumer. */
export async function buildExecutions(ctx: EngineContext, bus: Bus): Promise<ExecutionsParts> {
  const { config, roles, lifecycle } = ctx;
  const events = await openEventLog(ctx, bus);
  lifecycle.add('execution log', () => events.close());
  const executions = new ExecutionService(events, bus, ctx.registry);
  let router: ExecutionRouter | undefined;
  if (roles.gateway) {
    const budget = { perUserPerSec: config.executions.replayPerUserPerSec, perGatewayPerSec: config.executions.replayPerGatewayPerSec };
    const r = new ExecutionRouter({
      log: events,
      snapshotEvents: config.executions.snapshotEvents,
      pageSize: config.executions.replayPageSize,
      budget,
      // with gateway workers, the process's buckets: a user's replays on every worker share them
      ...(ctx.worker?.budgets ? { budgetLedger: ctx.worker.budgets.executionReplays(budget) } : {}),
    });
    lifecycle.add('executions router', () => r.close());
    router = r;
    if (events instanceof JetStreamEventLog && config.executions.consumeInbound) {
      lifecycle.add(
        'inbound executions consumer',
        consumeExecutionInbound({ jsm: events.manager, js: events.client, stream: config.executions.inboundStream, executions, log: ctx.log }),
      );
    }
  }
  return { events, executions, router };
}

async function openEventLog(ctx: EngineContext, bus: Bus): Promise<EventLog> {
  const { config, log } = ctx;
  // a gateway worker thread of an embedded engine uses the main thread's log
  if (ctx.worker?.events) return ctx.worker.events;
  const retention = { maxPerUser: config.executions.maxPerUser, retentionMs: config.executions.retentionSec * 1000 };
  if (bus.streams) {
    const nc = await bus.streams.jetStream();
    if (!nc) {
      log.warn({}, 'executions are off: the NATS server has no JetStream (start nats-server with -js)');
      return new DisabledEventLog('executions are not available here: the NATS server runs without JetStream');
    }
    return JetStreamEventLog.open(nc, {
      ...retention,
      stream: config.executions.stream,
      inboundStream: config.executions.inboundStream,
      dedupWindowMs: config.executions.dedupWindowSec * 1000,
      replicas: config.executions.replicas,
      onError: (err, what) => log.warn({ err }, `${what} failed; retrying`),
      connected: () => bus.connected,
    });
  }
  if (config.redisUrl) {
    return new RedisEventLog({
      ...retention,
      url: config.redisUrl,
      keyPrefix: config.executions.redisKeyPrefix,
      ackReplicas: config.redis.ackReplicas,
      ackTimeoutMs: config.redis.ackTimeoutMs,
      commandTimeoutMs: config.redis.commandTimeoutMs,
    });
  }
  return new MemoryEventLog(retention);
}

export interface PortfolioParts {
  /** the valuation service, when it runs in this process */
  readonly service: PortfolioService | undefined;
  /** what the service API calls: the local service, or a client of it over the bus */
  readonly api: PortfolioApi | undefined;
}

/** The portfolio service (with the `portfolio` role) or, on a scale-out gateway, a client of it. */
export async function buildPortfolio(ctx: EngineContext, bus: Bus, events: EventLog, lastValues: LastValueStore | undefined): Promise<PortfolioParts> {
  const { config, lifecycle } = ctx;
  if (!ctx.roles.portfolio) {
    const api = ctx.worker?.portfolioApi ?? (bus.requests ? new BusPortfolioClient(bus.requests, config.portfolio.requestTimeoutMs) : undefined);
    return { service: undefined, api };
  }
  const positions = config.redisUrl
    ? new RedisPositionStore(config.redisUrl, config.portfolio.redisKeyPrefix, {
        commandTimeoutMs: config.redis.commandTimeoutMs,
        pingIntervalMs: config.redis.pingIntervalMs,
      })
    : new MemoryPositionStore();
  lifecycle.add('position store', () => positions.close());
  const puts = await openPutRecords(ctx, events);
  lifecycle.add('positions records', () => puts.close());
  const service = new PortfolioService({
    bus,
    registry: ctx.registry,
    store: positions,
    events,
    puts,
    config: config.portfolio,
    log: ctx.log,
    // delayed views value delayed symbols at the prices their market channels show (docs/private-streams.md)
    delayMs: config.auth.delayMs,
    ...(lastValues ? { lastValues } : {}),
  });
  lifecycle.add('portfolio service', () => service.close());
  await service.start();
  if (bus.requests) lifecycle.add('portfolio rpc', servePortfolioRpc(bus.requests, service));
  return { service, api: service };
}

/**
 * Where positions PUTs are recorded (src/portfolio/put-records.ts): beside the executions log,
 * as durable as it, so that a book the position store lost is rebuilt from the last PUT and the
 * executions after it. NATS without JetStream has no durable place: memory.
 */
async function openPutRecords(ctx: EngineContext, events: EventLog): Promise<PutRecords> {
  const { config } = ctx;
  if (events instanceof JetStreamEventLog) {
    return JetStreamPutRecords.open(events.manager, events.client, { stream: config.portfolio.putStream, replicas: config.executions.replicas });
  }
  if (events instanceof RedisEventLog && config.redisUrl) {
    return new RedisPutRecords({
      url: config.redisUrl,
      keyPrefix: config.executions.redisKeyPrefix,
      ackReplicas: config.redis.ackReplicas,
      ackTimeoutMs: config.redis.ackTimeoutMs,
      commandTimeoutMs: config.redis.commandTimeoutMs,
    });
  }
  return new MemoryPutRecords();
}
