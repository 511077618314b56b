import type { Bus } from '../bus/bus.js';
import { MemoryBus } from '../bus/memory-bus.js';
import { NatsBus } from '../bus/nats-bus.js';
import type { Config, ConfigInput } from '../core/config.js';
import { loadConfig } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import { loadRegistry } from '../core/instruments-file.js';
import { createLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import { createFeed, feedType } from '../../feeds/registry.js';
import { extractFeedsFileFlag, loadFeedsFile, parseFeedsFile, resolveFeedsFile } from '../../feeds/config.js';
import type { FeedsFile, FeedsFileInput } from '../../feeds/config.js';
import { MarketChannelResolver } from '../fanout/channels.js';
import { Gateway } from '../gateway/server.js';
import { FeedHost } from '../ingest/feed-host.js';
import { createFailover } from '../ingest/failover.js';
import type { FailoverSelector } from '../ingest/failover.js';
import { FeedHealthView } from '../ingest/feed-health-view.js';
import { registerFeedRoutes } from '../ingest/feed-routes.js';
import { TickPublisher } from '../ingest/tick-publisher.js';
import type { LastValueStore } from '../store/last-value-store.js';
import { MemoryLastValueStore } from '../store/last-value-store.js';
import { RedisLastValueStore } from '../store/redis-last-value-store.js';
import { BusTap } from '../ops/bus-tap.js';
import { createMetrics } from '../ops/metrics.js';
import type { EngineMetrics, MetricsSources } from '../ops/metrics.js';
import { OpsServer } from '../ops/ops-server.js';
import { readiness } from '../ops/readiness.js';
import type { Readiness } from '../ops/readiness.js';
import { registerMetricsRoute } from '../ops/routes.js';
import { startStatsLog } from '../ops/stats-log.js';
import { TickAgeHistogram } from '../ops/tick-age.js';
import { VERSION } from '../ops/version.js';
import { redactUrl } from '../ops/redact.js';
import { createGatewayAccess } from '../access/gateway-access.js';
import type { GatewayAccess } from '../access/gateway-access.js';
import { PrivateStreams } from './private-streams.js';
import type { GatewayOptions } from '../gateway/server.js';
import type { SharedLimits } from '../gateway/limits.js';
import type { EventLog } from '../executions/event-log.js';
import type { PortfolioApi } from '../portfolio/portfolio-api.js';

/** How a gateway worker thread (src/workers) plugs into the engine: the parts shared with the other workers. */
export interface GatewayWorkerHooks {
  /** embedded mode: the main thread's in-process bus, last values, execution log and portfolio service */
  bus?: Bus;
  store?: LastValueStore;
  events?: EventLog;
  portfolioApi?: PortfolioApi;
  /** per-user connection counts and per-IP buckets across the workers */
  limits: SharedLimits;
  peers: NonNullable<GatewayOptions['peers']>;
  stats: NonNullable<GatewayOptions['stats']>;
  /** /health: this worker's answer, completed with the figures of every worker */
  health: (local: Record<string, unknown>) => Record<string, unknown>;
  /** /metrics: summed over the workers */
  metrics: (local: EngineMetrics) => EngineMetrics;
}

export interface EngineRoles {
  /** run the WebSocket gateway in this process */
  gateway: boolean;
  /** feeds (adapter ids) to run in this process */
  feeds: readonly string[];
  /** run the portfolio valuation service here (default: yes when embedded with a gateway) */
  portfolio: boolean;
}

export interface EngineOptions {
  /** defaults to gateway + config.feeds (the embedded default) */
  roles?: Partial<EngineRoles>;
  env?: NodeJS.ProcessEnv;
  argv?: readonly string[];
  log?: Logger;
  /** feeds file: a path or the document itself (default: --feeds-file in argv, else TICKWIRE_FEEDS_FILE) */
  feedsFile?: string | FeedsFileInput;
  /** set in a gateway worker thread (src/workers): listen on a shared port, count across workers */
  worker?: GatewayWorkerHooks;
}

export interface Engine {
  readonly config: Readonly<Config>;
  readonly registry: InstrumentRegistry;
  readonly bus: Bus;
  readonly log: Logger;
  readonly gateway: Gateway | undefined;
  readonly publisher: TickPublisher | undefined;
  readonly feeds: FeedHost | undefined;
  /** the feeds file in use (adapters, URLs, symbols, failover), if any */
  readonly feedsFile: FeedsFile | undefined;
  /** per-symbol failover between feeds running here */
  readonly failover: FailoverSelector | undefined;
  /** feed health learned from the bus (served at GET /v1/feeds) */
  readonly feedHealth: FeedHealthView | undefined;
  /** bound gateway port (0 when no gateway runs here) */
  readonly port: number;
  readonly mode: 'embedded' | 'nats';
  /** last values: Redis when REDIS_URL is set, memory when feeds and gateway share this process */
  readonly store: LastValueStore | undefined;
  /** Prometheus metrics (GET /metrics on the gateway or the ops port); undefined when ops.metrics is off */
  readonly metrics: EngineMetrics | undefined;
  /** /health, /ready, /metrics for processes without a gateway (ops.port) */
  readonly ops: OpsServer | undefined;
  /** execution log, executions router, delay lines, portfolio service (or its client) */
  readonly private: PrivateStreams | undefined;
  /** authenticator, token lifetime and limits of the gateway */
  readonly access: GatewayAccess | undefined;
  /** bus and store reachable (what /ready answers) */
  ready(): Readiness;
  /**
   * Graceful stop: stop accepting, close clients with 1001, stop feeds, flush pending store
   * writes, drain the bus. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Start tickwire in this process. With no NATS URL everything runs embedded (in-process bus,
 * memory last values, synthetic feeds, gateway); with one, each role can run on its own.
 */
export async function startEngine(overrides: ConfigInput | Record<string, unknown> = {}, options: EngineOptions = {}): Promise<Engine> {
  const env = options.env ?? process.env;
  // --feeds-file / TICKWIRE_FEEDS_FILE belong to the feeds layer, not to the main configuration
  const feedsArgs = options.feedsFile === undefined ? resolveFeedsFile(options.argv ?? [], env) : extractFeedsFileFlag(options.argv ?? []);
  const feedsFile: FeedsFile | undefined =
    typeof options.feedsFile === 'string' ? loadFeedsFile(options.feedsFile) : options.feedsFile ? parseFeedsFile(options.feedsFile, 'feedsFile option') : 'file' in feedsArgs ? feedsArgs.file : undefined;
  const config = loadConfig({ env, argv: feedsArgs.rest, overrides });
  const log = options.log ?? createLogger(config.log);
  const registry = loadRegistry(config.instrumentsFile);
  const roles: EngineRoles = { gateway: options.roles?.gateway ?? true, feeds: options.roles?.feeds ?? feedsFile?.run ?? config.feeds, portfolio: false };
  roles.portfolio = options.roles?.portfolio ?? (!config.natsUrl && roles.gateway);
  const mode = config.natsUrl ? 'nats' : 'embedded';

  // set once the gateway exists: tells `system` subscribers when market data goes stale
  let busNotice: ((state: string) => void) | undefined;
  const worker = options.worker;
  const bus: Bus = worker?.bus ?? (config.natsUrl
    ? await NatsBus.connect({
        servers: config.natsUrl,
        name: roles.gateway ? 'tickwire-gateway' : roles.portfolio ? 'tickwire-portfolio' : `tickwire-feed-${roles.feeds.join('+')}`,
        onStatus: (state, detail) => {
          log.info({ state, detail }, 'nats connection');
          busNotice?.(state);
        },
      })
    : new MemoryBus());

  // Redis when configured (shared by every process); otherwise, when the publisher and the gateway
  // share this process, the last values live in memory
  const store: LastValueStore | undefined = worker?.store ?? (config.redisUrl
    ? new RedisLastValueStore({
        url: config.redisUrl,
        keyPrefix: config.redis.keyPrefix,
        flushMs: config.redis.flushMs,
        maxPendingKeys: config.redis.maxPendingKeys,
        log,
        name: roles.gateway ? 'tickwire-gateway' : 'tickwire-feed',
      })
    : mode === 'embedded' || (roles.gateway && roles.feeds.length > 0)
      ? new MemoryLastValueStore()
      : undefined);
  if (store instanceof RedisLastValueStore && !(await store.waitReady(5000))) {
    log.warn({ redis: redactUrl(config.redisUrl ?? '') }, 'redis not reachable yet: snapshots come from live data until it is (/ready reports it)');
  }

  // counts bus traffic for metrics; the gateway and the publisher use it, engine.bus stays the raw bus
  const busTap = new BusTap(bus);
  const ready = readiness({ bus: () => bus.connected, ...(store ? { store: () => store.ready } : {}) });
  const tickAge = config.ops.metrics && roles.gateway ? new TickAgeHistogram() : undefined;
  const sources: MetricsSources = {
    info: { mode, roles: [roles.gateway ? 'gateway' : '', ...roles.feeds.map((f) => `feed:${f}`), roles.portfolio ? 'portfolio' : ''].filter(Boolean).join(','), version: VERSION },
    bus: busTap,
    busConnected: () => bus.connected,
    ...(store ? { store } : {}),
    ...(tickAge ? { tickAge } : {}),
  };
  const metrics = config.ops.metrics ? (worker ? worker.metrics(createMetrics(sources)) : createMetrics(sources)) : undefined;
  let ops: OpsServer | undefined;
  let stopStatsLog: () => void = () => undefined;

  let publisher: TickPublisher | undefined;
  let feeds: FeedHost | undefined;
  let gateway: Gateway | undefined;
  let failover: FailoverSelector | undefined;
  let feedHealth: FeedHealthView | undefined;
  let privateStreams: PrivateStreams | undefined;
  let access: GatewayAccess | undefined;
  const cleanup = async (): Promise<void> => {
    stopStatsLog();
    ops?.stopAccepting();
    if (gateway) {
      const g = gateway;
      g.close(1001, 'server shutting down');
      // let the close frames reach the clients before the bus and the process go away
      await waitUntil(() => g.connections.size === 0, 2000);
      await new Promise((r) => setTimeout(r, 50));
    }
    access?.close();
    await privateStreams?.close().catch((err: unknown) => log.warn({ err }, 'private streams close failed'));
    await feeds?.stopAll();
    failover?.stop();
    publisher?.close();
    await store?.close().catch((err: unknown) => log.warn({ err }, 'store close failed')); // flushes pending writes
    await bus.close(); // drains: what was published reaches NATS
    await ops?.close();
    feedHealth?.close();
  };

  try {
    if (roles.gateway || roles.portfolio) {
      privateStreams = await PrivateStreams.start({
        config, bus, registry, log, gateway: roles.gateway, portfolio: roles.portfolio, ...(store ? { lastValues: store } : {}),
        ...(worker?.events ? { events: worker.events } : {}), ...(worker?.portfolioApi ? { portfolioApi: worker.portfolioApi } : {}),
      });
    }
    if (roles.gateway) {
      const priv = privateStreams!;
      const resolvers = priv.resolvers(new MarketChannelResolver(registry));
      const gatewayAccess = createGatewayAccess(config, resolvers, worker?.limits);
      access = gatewayAccess;
      sources.limits = gatewayAccess.limits;
      if (priv.router) sources.replays = priv.router;
      feedHealth = new FeedHealthView(bus);
      const healthView = feedHealth;
      // feed metrics on a gateway: every feed that reports on the bus, in this process or another
      sources.feeds = () => healthView.list();
      gateway = new Gateway({
        config,
        bus: priv.gatewayBus(busTap),
        ...(store ? { store } : {}),
        resolvers,
        authenticator: gatewayAccess.authenticator,
        admit: gatewayAccess.admit,
        admitMessage: gatewayAccess.admitMessage,
        onAuthChanged: gatewayAccess.onAuthChanged,
        admitAuth: gatewayAccess.admitAuth,
        log,
        // a gateway with its own feeds reports them; one without (scale-out) reports every feed it hears on the bus
        health: () => {
          const h = { mode, bus: bus.connected ? 'connected' : 'disconnected', feeds: feeds ? feeds.health() : healthView.list() };
          return worker ? worker.health(h) : h;
        },
        ready,
        ...(worker ? { peers: worker.peers, stats: worker.stats } : {}),
        routes: (app, gw) => {
          sources.gateway = gw;
          if (metrics) registerMetricsRoute(app, metrics);
          registerFeedRoutes(app, healthView);
          priv.routes(app);
        },
        onConnectionOpen: (conn) => {
          gatewayAccess.onOpen(conn);
          log.info({ conn: conn.id, ip: conn.ip, user: conn.principal.user, enc: conn.codec.encoding }, 'connection open');
        },
        onConnectionClose: (conn, code) => {
          gatewayAccess.onClose(conn);
          const fields = { conn: conn.id, ip: conn.ip, user: conn.principal.user, code, duration_ms: Date.now() - conn.openedAt };
          if (code === 4009) log.warn(fields, 'connection closed: slow consumer');
          else log.info(fields, 'connection closed');
        },
      });
      if (tickAge) gateway.hub.onUpdate = tickAge.onUpdate;
      priv.attachHub(gateway.hub);
      await gateway.listen(config.host, config.port, { shared: worker !== undefined });
      const hub = gateway.hub;
      let interrupted = false;
      busNotice = (state) => {
        if (state === 'disconnected' && !interrupted) {
          interrupted = true;
          hub.inject('system', { d: { level: 'warning', title: 'Market data interrupted', message: 'This gateway lost its connection to the message bus: prices are stale until it reconnects. Your connection stays open.', t: Date.now() } });
        } else if (state === 'connected' && interrupted) {
          interrupted = false;
          hub.inject('system', { d: { level: 'info', title: 'Market data resumed', message: 'The message bus is back: live prices flow again.', t: Date.now() } });
        }
      };
      log.info({ host: config.host, port: gateway.port, mode }, `tickwire gateway listening on ws://${config.host}:${gateway.port}/v1/stream`);
    }
    if (roles.feeds.length > 0) {
      publisher = new TickPublisher({ bus: busTap, registry, ...(store ? { lastValues: store } : {}) });
      failover = createFailover(feedsFile, roles.feeds, publisher, log);
      feeds = new FeedHost(publisher, log, { bus, ...(failover ? { failover } : {}) });
      sources.publisher = publisher;
      const host = feeds;
      if (!feedHealth) sources.feeds = () => host.health();
      for (const name of roles.feeds) {
        const adapter = createFeed(name, { config, registry, env, ...(feedsFile ? { feedsFile } : {}) });
        await feeds.start(adapter, feedType(name, feedsFile));
        log.info({ feed: name }, 'feed started');
      }
    }
    if (!roles.gateway && config.ops.port > 0) {
      ops = await OpsServer.listen({
        host: config.host,
        port: config.ops.port,
        ready,
        health: () => ({ mode, bus: bus.connected ? 'connected' : 'disconnected', feeds: feeds?.health() ?? [] }),
        ...(metrics ? { metrics } : {}),
      });
      log.info({ host: config.host, port: ops.port }, `ops endpoints on http://${config.host}:${ops.port}/health, /ready, /metrics`);
    }
    stopStatsLog = startStatsLog(log, sources, config.ops.statsLogSec);
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    config, registry, bus, log, gateway, publisher, feeds, feedsFile, failover, feedHealth, mode, store, metrics, ops, ready,
    private: privateStreams, access,
    port: gateway?.port ?? 0,
    close: () => (closing ??= cleanup()),
  };
}

async function waitUntil(cond: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}
