import { statSync } from 'node:fs';
import type { Bus } from '../bus/bus.js';
import type { Config, ConfigInput } from '../core/config.js';
import { configKeySetBy, loadConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import { loadRegistry } from '../core/instruments-file.js';
import { createLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import { extractFeedsFileFlag, loadFeedsFile, parseFeedsFile, resolveFeedsFile } from '../../feeds/config.js';
import type { FeedsFile, FeedsFileInput } from '../../feeds/config.js';
import type { GatewayAccess } from '../access/gateway-access.js';
import type { FailoverSelector } from '../ingest/failover.js';
import type { FeedHealthView } from '../ingest/feed-health-view.js';
import type { FeedHost } from '../ingest/feed-host.js';
import type { TickPublisher } from '../ingest/tick-publisher.js';
import type { Gateway } from '../gateway/server.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { BarStore } from '../history/bar-store.js';
import type { EngineMetrics } from '../ops/metrics.js';
import type { OpsServer } from '../ops/ops-server.js';
import type { Readiness } from '../ops/readiness.js';
import type { EngineContext, EngineRoles, GatewayWorkerHooks } from './context.js';
import type { AdminView } from '../admin/admin.js';
import { buildFeeds } from './feeds.js';
import type { FeedsParts } from './feeds.js';
import { buildGateway } from './gateway.js';
import type { GatewayParts } from './gateway.js';
import { buildBus, buildStore } from './infra.js';
import { Lifecycle } from './lifecycle.js';
import { buildObservability, buildOpsServer } from './ops.js';
import { buildExecutions, buildPortfolio } from './private.js';
import type { ExecutionsParts, PortfolioParts } from './private.js';
import { buildUserAlerts } from '../alerts/alerts.js';
import type { UserAlerts } from '../alerts/alerts.js';
import { buildBarHistory } from '../history/bar-history.js';

export type { EngineRoles, GatewayWorkerHooks } from './context.js';

/** The private-streams side of a process: execution log, router, delay lines, portfolio. */
export interface PrivateParts extends ExecutionsParts {
  readonly delay: GatewayParts['delay'] | undefined;
  readonly portfolio: PortfolioParts['service'];
  readonly portfolioApi: PortfolioParts['api'];
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
  /** closed bars for history (src/history): Redis, memory, or none (NATS mode without Redis) */
  readonly bars: BarStore | undefined;
  /** Prometheus metrics (GET /metrics on the gateway or the ops port); undefined when ops.metrics is off */
  readonly metrics: EngineMetrics | undefined;
  /** the operator's console of this gateway (/admin), when a gateway runs here */
  readonly admin: AdminView | undefined;
  /** /health, /ready, /metrics for processes without a gateway (ops.port) */
  readonly ops: OpsServer | undefined;
  /** execution log, executions router, delay lines, portfolio service (or its client) */
  readonly private: PrivateParts | undefined;
  /** authenticator, token lifetime and limits of the gateway */
  readonly access: GatewayAccess | undefined;
  /** notifications log and channel, alert service (or its bus client) */
  readonly userAlerts: UserAlerts | undefined;
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
 *
 * This is the one composition root: it loads the configuration, decides the roles, and calls one
 * builder per component in order (bus, store, observability, private streams, feeds, gateway,
 * ops server). Each builder registers its shutdown with the lifecycle, which closes everything in
 * reverse order.
 */
export async function startEngine(overrides: ConfigInput | Record<string, unknown> = {}, options: EngineOptions = {}): Promise<Engine> {
  const ctx = loadContext(overrides, options);
  const { config, roles } = ctx;
  try {
    const bus = await buildBus(ctx);
    const store = await buildStore(ctx);
    const bars = buildBarHistory({
      config,
      registry: ctx.registry,
      log: ctx.log,
      gateway: roles.gateway,
      feeds: roles.feeds.length > 0,
      ...(ctx.worker?.bars ? { shared: ctx.worker.bars } : {}),
    });
    ctx.lifecycle.add('bar store', () => bars.close());
    const obs = buildObservability(ctx, bus, store);
    let priv: PrivateParts | undefined;
    let portfolio: PortfolioParts | undefined;
    if (roles.gateway || roles.portfolio) {
      const executions = await buildExecutions(ctx, bus);
      // (an embedded gateway worker's log is the main thread's: the worker's view reads 1, and
      // /metrics takes the minimum with the main thread's, src/workers/aggregate.ts)
      obs.sources.executionsLog = executions.events;
      portfolio = await buildPortfolio(ctx, bus, executions.events, store);
      if (portfolio.service) obs.sources.portfolio = portfolio.service;
      priv = { ...executions, delay: undefined, portfolio: portfolio.service, portfolioApi: portfolio.api };
    }
    let userAlerts: UserAlerts | undefined;
    // an embedded gateway worker uses the main thread's notifications log and alert service (src/workers)
    const shared = ctx.worker && ctx.mode === 'embedded' ? ctx.worker : undefined;
    if ((roles.gateway || roles.alerts) && (!shared || shared.notifications)) {
      const ua = await buildUserAlerts({
        config,
        bus,
        registry: ctx.registry,
        log: ctx.log,
        gateway: roles.gateway,
        alertService: roles.alerts,
        ...(shared?.notifications ? { notificationsLog: shared.notifications } : {}),
        ...(shared?.alerts ? { alertsApi: shared.alerts } : {}),
        ...(ctx.worker?.budgets ? { replayLedger: ctx.worker.budgets.notificationReplays } : {}),
      });
      ctx.lifecycle.add('alerts and notifications', () => ua.close());
      userAlerts = ua;
      if (ua.alerts?.services) obs.sources.alerts = ua.alerts.services;
    }
    let feeds: FeedsParts | undefined;
    if (roles.feeds.length > 0) {
      feeds = await buildFeeds(ctx, bus, obs.busTap, store, bars.store);
      obs.sources.publisher = feeds.publisher;
      obs.sources.feeds = () => feeds!.host.health();
    }
    let gw: GatewayParts | undefined;
    if (roles.gateway) {
      gw = await buildGateway(ctx, {
        bus,
        busTap: obs.busTap,
        store,
        executions: priv!,
        portfolio: portfolio!,
        userAlerts,
        feeds,
        ready: obs.ready,
        metrics: obs.metrics,
        sources: obs.sources,
        bars,
      });
      priv = { ...priv!, delay: gw.delay };
    }
    const ops = roles.gateway ? undefined : await buildOpsServer(ctx, obs, feeds);
    // the subscriptions made while starting (request/reply services, market data, inbound
    // consumers) are on the bus's server before start resolves: a request sent by another
    // process right after would otherwise find "no responders". Bounded: a bus that is down now
    // is reported by its own status, not by a start that never ends.
    await Promise.race([bus.flush().catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    obs.startStatsLog();
    return {
      config,
      registry: ctx.registry,
      bus,
      log: ctx.log,
      mode: ctx.mode,
      feedsFile: ctx.feedsFile,
      store,
      bars: bars.store,
      ops,
      gateway: gw?.gateway,
      access: gw?.access,
      admin: gw?.admin,
      userAlerts,
      feedHealth: gw?.feedHealth,
      publisher: feeds?.publisher,
      feeds: feeds?.host,
      failover: feeds?.failover,
      metrics: obs.metrics,
      ready: obs.ready,
      private: priv,
      port: gw?.gateway.port ?? 0,
      close: () => ctx.lifecycle.close(),
    };
  } catch (err) {
    await ctx.lifecycle.close();
    throw err;
  }
}

/** Configuration, feeds file, instruments and roles: everything decided before anything starts. */
function loadContext(overrides: ConfigInput | Record<string, unknown>, options: EngineOptions): EngineContext {
  const env = options.env ?? process.env;
  // --feeds-file / TICKWIRE_FEEDS_FILE belong to the feeds layer, not to the main configuration
  const feedsArgs = options.feedsFile === undefined ? resolveFeedsFile(options.argv ?? [], env) : extractFeedsFileFlag(options.argv ?? []);
  const feedsFile: FeedsFile | undefined =
    typeof options.feedsFile === 'string'
      ? loadFeedsFile(options.feedsFile)
      : options.feedsFile
        ? parseFeedsFile(options.feedsFile, 'feedsFile option')
        : 'file' in feedsArgs
          ? feedsArgs.file
          : undefined;
  const config = loadConfig({ env, argv: feedsArgs.rest, overrides });
  const log = options.log ?? createLogger(config.log);
  const gateway = options.roles?.gateway ?? true;
  const roles: EngineRoles = {
    gateway,
    feeds: options.roles?.feeds ?? feedsFile?.run ?? config.feeds,
    portfolio: options.roles?.portfolio ?? (!config.natsUrl && gateway),
    alerts: options.roles?.alerts ?? (!config.natsUrl && gateway),
  };
  // the gateway serves what it finds there: a wrong path gave a 404 dashboard and no word in the log
  if (roles.gateway && config.gateway.webDir !== undefined && !isDirectory(config.gateway.webDir))
    throw new ConfigError(
      `gateway.webDir ${config.gateway.webDir} (${configKeySetBy(config, 'gateway.webDir')}) is not a directory: give the directory of the built dashboard (npm run build writes dist/web), or unset it`,
    );
  return {
    config,
    log,
    env,
    roles,
    feedsFile,
    registry: loadRegistry(config.instrumentsFile, configKeySetBy(config, 'instrumentsFile')),
    mode: config.natsUrl ? 'nats' : 'embedded',
    lifecycle: new Lifecycle(log),
    worker: options.worker,
  };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
