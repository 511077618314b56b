import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { TemplatedApp } from 'uWebSockets.js';
import type { Bus } from '../bus/bus.js';
import { NatsBus } from '../bus/nats-bus.js';
import { EntitledMarketResolver } from '../access/entitled-resolver.js';
import { MarketDelay } from '../fanout/market-delay.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { ChannelResolver } from '../fanout/channels.js';
import { registerServiceApi } from '../service-api/service-api.js';
import { NatsPortfolioClient, servePortfolioRpc } from '../portfolio/portfolio-api.js';
import type { PortfolioApi } from '../portfolio/portfolio-api.js';
import { PortfolioService } from '../portfolio/portfolio-service.js';
import { MemoryPositionStore, RedisPositionStore } from '../portfolio/position-store.js';
import type { PositionStore } from '../portfolio/position-store.js';
import type { LastValueStore } from '../store/last-value-store.js';
import { DisabledEventLog, MemoryEventLog } from '../executions/event-log.js';
import type { EventLog } from '../executions/event-log.js';
import { ExecutionRouter } from '../executions/execution-router.js';
import type { HubView } from '../executions/execution-router.js';
import { ExecutionService } from '../executions/execution-service.js';
import { GatewayBus } from '../fanout/gateway-bus.js';
import { consumeInbound } from '../executions/inbound-consumer.js';
import { JetStreamEventLog } from '../executions/jetstream-event-log.js';
import { PrivateChannelResolver } from '../executions/private-channels.js';
import { RedisEventLog } from '../executions/redis-event-log.js';

export interface PrivateStreamsOptions {
  config: Readonly<Config>;
  /** the real bus (NatsBus in NATS mode: JetStream rides on its connection) */
  bus: Bus;
  registry: InstrumentRegistry;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  lastValues?: LastValueStore;
  /** this process serves clients (router, delay lines, service API) */
  gateway: boolean;
  /** this process runs the portfolio service */
  portfolio: boolean;
  /** a gateway worker thread in embedded mode: the main thread's execution log and portfolio service */
  events?: EventLog;
  portfolioApi?: PortfolioApi;
}

/**
 * Everything behind the private channels, for one process: the execution log (JetStream on NATS,
 * Redis or memory when embedded), the write side (service API, exec.in consumer), the gateway's
 * executions router and delay lines, and the portfolio service or a client of it.
 */
export class PrivateStreams {
  readonly events: EventLog;
  readonly executions: ExecutionService;
  readonly router: ExecutionRouter | undefined;
  readonly delay: MarketDelay | undefined;
  readonly portfolio: PortfolioService | undefined;
  readonly portfolioApi: PortfolioApi | undefined;
  readonly #opts: PrivateStreamsOptions;
  readonly #positions: PositionStore | undefined;
  readonly #stops: (() => void)[] = [];

  private constructor(opts: PrivateStreamsOptions, parts: {
    events: EventLog; portfolio?: PortfolioService; portfolioApi?: PortfolioApi; positions?: PositionStore;
  }) {
    this.#opts = opts;
    const { config } = opts;
    this.events = parts.events;
    this.executions = new ExecutionService(parts.events, opts.bus, opts.registry);
    this.portfolio = parts.portfolio;
    this.portfolioApi = parts.portfolioApi;
    this.#positions = parts.positions;
    this.router = opts.gateway
      ? new ExecutionRouter({
          log: parts.events,
          maxTierMs: Math.max(0, ...config.throttle.tiers),
          snapshotEvents: config.executions.snapshotEvents,
          pageSize: config.executions.replayPageSize,
          budget: { perUserPerSec: config.executions.replayPerUserPerSec, perGatewayPerSec: config.executions.replayPerGatewayPerSec },
        })
      : undefined;
    this.delay = opts.gateway ? new MarketDelay(opts.bus, { delayMs: config.auth.delayMs, maxBuffered: config.auth.delayMaxBuffered }) : undefined;
  }

  static async start(opts: PrivateStreamsOptions): Promise<PrivateStreams> {
    const { config, bus } = opts;
    const retention = { maxPerUser: config.executions.maxPerUser, retentionMs: config.executions.retentionSec * 1000 };
    const nats = bus instanceof NatsBus ? bus.nc : undefined;
    let events: EventLog;
    if (opts.events) {
      events = opts.events;
    } else if (nats && !(await hasJetStream(nats))) {
      opts.log.warn({}, 'executions are off: the NATS server has no JetStream (start nats-server with -js)');
      events = new DisabledEventLog('executions are not available here: the NATS server runs without JetStream');
    } else if (nats) {
      events = await JetStreamEventLog.open(nats, {
        ...retention,
        stream: config.executions.stream,
        inboundStream: config.executions.inboundStream,
        dedupWindowMs: config.executions.dedupWindowSec * 1000,
        replicas: config.executions.replicas,
        onError: (err, what) => opts.log.warn({ err }, `${what} failed; retrying`),
      });
    } else if (config.redisUrl) {
      events = new RedisEventLog({ ...retention, url: config.redisUrl, keyPrefix: config.executions.redisKeyPrefix, ackReplicas: config.redis.ackReplicas, ackTimeoutMs: config.redis.ackTimeoutMs });
    } else {
      events = new MemoryEventLog(retention);
    }

    let portfolio: PortfolioService | undefined;
    let positions: PositionStore | undefined;
    let portfolioApi: PortfolioApi | undefined;
    try {
      if (opts.portfolio) {
        positions = config.redisUrl ? new RedisPositionStore(config.redisUrl, config.portfolio.redisKeyPrefix) : new MemoryPositionStore();
        portfolio = new PortfolioService({
          bus, registry: opts.registry, store: positions, events, config: config.portfolio, log: opts.log,
          ...(opts.lastValues ? { lastValues: opts.lastValues } : {}),
        });
        await portfolio.start();
        portfolioApi = portfolio;
      } else if (opts.portfolioApi) {
        portfolioApi = opts.portfolioApi;
      } else if (nats) {
        portfolioApi = new NatsPortfolioClient(nats, config.portfolio.requestTimeoutMs);
      }
    } catch (err) {
      await portfolio?.close().catch(() => undefined);
      await positions?.close().catch(() => undefined);
      await events.close().catch(() => undefined);
      throw err;
    }

    const ps = new PrivateStreams(opts, {
      events, ...(portfolio ? { portfolio } : {}), ...(portfolioApi ? { portfolioApi } : {}), ...(positions ? { positions } : {}),
    });
    if (nats && portfolio) ps.#stops.push(servePortfolioRpc(nats, portfolio));
    if (events instanceof JetStreamEventLog && opts.gateway && config.executions.consumeInbound) {
      ps.#stops.push(consumeInbound({ jsm: events.manager, js: events.client, stream: config.executions.inboundStream, executions: ps.executions, log: opts.log }));
    }
    return ps;
  }

  /** The bus for the gateway hub: `inner` (the real bus, or a tap of it) plus local delay lines and executions feeds. */
  gatewayBus(inner: Bus = this.#opts.bus): Bus {
    return new GatewayBus(inner, {
      ...(this.delay ? { delay: this.delay } : {}),
      ...(this.router ? { executions: this.router } : {}),
    });
  }

  /** Resolvers in order: private channels and system, then market data with entitlements. */
  resolvers(market: ChannelResolver): ChannelResolver[] {
    const off = this.events instanceof DisabledEventLog ? this.events.reason : undefined;
    return [new PrivateChannelResolver(this.router, off), new EntitledMarketResolver(market, this.#opts.registry, this.#opts.config.auth)];
  }

  /** Let the executions router watch the hub's tiers (exact, short replay seams). */
  attachHub(hub: HubView): void {
    this.router?.attachHub(hub, this.#opts.config.throttle.tiers);
  }

  /** Register the service API on the gateway. */
  routes(app: TemplatedApp): void {
    registerServiceApi(app, {
      serviceToken: this.#opts.config.auth.serviceToken,
      executions: this.executions,
      portfolio: this.portfolioApi,
      log: this.#opts.log,
    });
  }

  get ready(): boolean {
    return this.events.ready;
  }

  async close(): Promise<void> {
    for (const s of this.#stops.splice(0)) s();
    this.router?.close();
    this.delay?.close();
    await this.portfolio?.close();
    await this.#positions?.close();
    await this.events.close();
  }
}

async function hasJetStream(nc: NatsConnection): Promise<boolean> {
  try {
    await jetstreamManager(nc);
    return true;
  } catch {
    return false;
  }
}
