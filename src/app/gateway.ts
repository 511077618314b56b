import { ScopeRefusalCounts } from '../access/service-tokens.js';
import { createHash } from 'node:crypto';
import { EntitledMarketResolver } from '../access/entitled-resolver.js';
import { entitlementsOf } from '../access/jwt-authenticator.js';
import { buildBookChannels } from '../fanout/book-channels.js';
import type { BookChannels } from '../fanout/book-channels.js';
import { createGatewayAccess } from '../access/gateway-access.js';
import type { GatewayAccess } from '../access/gateway-access.js';
import type { Bus } from '../bus/bus.js';
import { PrivateChannelResolver } from '../executions/private-channels.js';
import { DisabledEventLog } from '../executions/event-log.js';
import { MarketChannelResolver } from '../fanout/channels.js';
import type { ChannelResolver } from '../fanout/channels.js';
import type { Principal } from '../fanout/channels.js';
import { ReplayBudget, realBudgetClock } from '../executions/replay-budget.js';
import { GatewayBus } from '../fanout/gateway-bus.js';
import { MarketDelay } from '../fanout/market-delay.js';
import type { Hub } from '../fanout/hub.js';
import { CLOSE_SLOW_CONSUMER } from '../gateway/connection.js';
import { clientAddressKey } from '../gateway/limits.js';
import { Gateway } from '../gateway/server.js';
import type { GatewayOptions } from '../gateway/server.js';
import { FeedHealthView } from '../ingest/feed-health-view.js';
import { registerFeedRoutes } from '../ingest/feed-routes.js';
import type { EngineMetrics, MetricsSources } from '../ops/metrics.js';
import type { Readiness } from '../ops/readiness.js';
import { registerMetricsRoute } from '../ops/routes.js';
import type { BusTap } from '../ops/bus-tap.js';
import { registerServiceApi } from '../service-api/service-api.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { EngineContext } from './context.js';
import type { FeedsParts } from './feeds.js';
import type { BarHistory } from '../history/bar-history.js';
import type { ExecutionsParts, PortfolioParts } from './private.js';
import type { UserAlerts } from '../alerts/alerts.js';
import { registerAdmin } from '../admin/admin.js';
import type { AdminView } from '../admin/admin.js';
import { firstSight } from '../core/first-sight.js';
import { answeredHosts } from '../core/hosts.js';

export interface GatewayDeps {
  /** the real bus (delay lines and the outage notice use it) */
  bus: Bus;
  /** the bus as counted for metrics: what the hub subscribes through */
  busTap: BusTap;
  store: LastValueStore | undefined;
  executions: ExecutionsParts;
  portfolio: PortfolioParts;
  /** the notifications channel, alert routes and in-band alert ops (none in embedded gateway workers) */
  userAlerts: UserAlerts | undefined;
  /** feeds running in this process, if any (their health is /health's) */
  feeds: FeedsParts | undefined;
  ready: () => Readiness;
  metrics: EngineMetrics | undefined;
  sources: MetricsSources;
  /** bar history: `history` on bar channels and GET /v1/bars (src/history) */
  bars?: BarHistory;
}

export interface GatewayParts {
  readonly gateway: Gateway;
  readonly access: GatewayAccess;
  readonly delay: MarketDelay;
  readonly feedHealth: FeedHealthView;
  /** `book:SYM` channels (src/fanout/book-channels.ts) */
  readonly books: BookChannels;
  /** the operator's console (/admin) */
  readonly admin: AdminView;
}

/**
 * The WebSocket gateway: channel resolvers (private channels, entitled market data), access
 * (JWT, limits), the hub's bus with delay lines and executions feeds, the HTTP routes (service
 * API, metrics, feeds), and the bus-outage notice on the `system` channel.
 */
export async function buildGateway(ctx: EngineContext, deps: GatewayDeps): Promise<GatewayParts> {
  const { config, registry, log, lifecycle, mode } = ctx;
  const { bus, executions, sources, userAlerts } = deps;
  const { router, events } = executions;

  // once per delay seen: every valuation of every restricted view would repeat it
  const firstShortDelay = firstSight<number>(16);
  const delay = new MarketDelay(bus, { delayMs: config.auth.delayMs, maxBuffered: config.auth.delayMaxBuffered });
  lifecycle.add('delay lines', () => delay.close());
  // order books: one shared book per symbol, with the principal's entitlements (delayed: a delay line)
  const books = buildBookChannels(config, registry, deps.store, (p, sym, cls) => entitlementsOf(p, config.auth).access(sym, cls));
  const resolvers: ChannelResolver[] = [
    books,
    ...(userAlerts?.resolvers ?? []),
    new PrivateChannelResolver(router, events instanceof DisabledEventLog ? events.reason : undefined, {
      access: (p) => {
        const ents = entitlementsOf(p, config.auth);
        return (sym, cls) => ents.access(sym, cls);
      },
      id: (p) =>
        createHash('sha256')
          .update(JSON.stringify(p.claims?.[config.auth.entitlementsClaim] ?? null))
          .digest('base64url'),
      classOf: (sym) => registry.get(sym)?.assetClass,
      delayMs: config.auth.delayMs,
      onShortDelay: (serviceMs) => {
        if (!firstShortDelay(serviceMs)) return;
        log.error(
          { serviceDelayMs: serviceMs, delayMs: config.auth.delayMs },
          "portfolio: the portfolio service values delayed lines at a shorter delay than this gateway's auth.delayMs; those lines are shown unpriced. Run the portfolio service and the gateways with the same auth.delayMs (TICKWIRE_AUTH_DELAY_MS)",
        );
      },
    }),
    new EntitledMarketResolver(new MarketChannelResolver(registry, deps.bars?.store), registry, config.auth),
  ];
  const { worker } = ctx;
  const access = createGatewayAccess(config, resolvers, worker?.limits, { log });
  /** 403s of service tokens without the route's scope, service API and console together (metrics) */
  const scopeRefusals = new ScopeRefusalCounts();
  sources.scopeRefusals = scopeRefusals;
  lifecycle.add('gateway access', () => access.close());
  const feedHealth = new FeedHealthView(bus);
  lifecycle.add('feed health view', () => feedHealth.close());
  // a gateway with its own feeds reports them; one without (scale-out) reports every feed it hears on the bus
  const feedList = deps.feeds ? () => deps.feeds!.host.health() : () => feedHealth.list();

  // bar store reads (history on subscribe, GET /v1/bars) take from a budget per user (anonymous:
  // per IP; NUL cannot start a user id) and per gateway, and wait when it is spent
  // per-user key (anonymous: per IP) and per gateway; with gateway workers, the process's buckets
  const barBudget = { perUserPerSec: config.history.readBarsPerUserPerSec, perGatewayPerSec: config.history.readBarsPerGatewayPerSec };
  const barReads = new ReplayBudget(barBudget, realBudgetClock, worker?.budgets?.barReads(barBudget));
  const barReader = (p: Principal, ip: string): string => p.user ?? `\u0000${clientAddressKey(ip)}`;
  const readGate = (p: Principal, ip: string, bars: number, signal?: AbortSignal): Promise<unknown> => barReads.acquire(barReader(p, ip), bars, signal);
  const wrap = (b: Bus): Bus => (userAlerts ? userAlerts.wrapBus(b) : b);
  let admin: AdminView | undefined;
  const gateway = new Gateway({
    config,
    bus: wrap(new GatewayBus(deps.busTap, { delay, ...(router ? { executions: router } : {}) })),
    ...(deps.store ? { store: deps.store } : {}),
    resolvers,
    authenticator: access.authenticator,
    admitAddress: access.admitAddress,
    admit: access.admit,
    admitMessage: access.admitMessage,
    admitPong: access.admitPong,
    admitHttp: access.admitHttp,
    historyGate: (conn, bars, signal) => readGate(conn.principal, conn.ip, bars, signal),
    onAuthChanged: (conn) => {
      access.onAuthChanged(conn);
      // the alert service holds the rules this token no longer entitles (docs/alerts.md,
      // Entitlements), also when the refresh just withdrew a subscription and closes the connection
      userAlerts?.reportAccess(conn.principal);
    },
    admitAuth: access.admitAuth,
    admitAuthAttempt: access.admitAuthAttempt,
    admitChannels: access.admitChannels,
    admitCostly: access.admitCostly,
    chargeFrames: access.chargeFrames,
    ...(userAlerts ? { extensions: userAlerts.extensions } : {}),
    log,
    health: () => {
      const h = { mode, bus: bus.connected ? 'connected' : 'disconnected', feeds: feedList() };
      return worker ? worker.health(h) : h;
    },
    ready: deps.ready,
    ...(worker ? { peers: worker.peers, stats: worker.stats } : {}),
    ...httpStreamRouting(bus, worker?.forwardHttpStream),
    routes: (app, gw) => {
      admin = registerAdmin(app, {
        gateway: gw,
        serviceToken: config.auth.serviceToken,
        serviceTokens: config.auth.serviceTokens,
        scopeRefusals,
        authenticator: access.authenticator,
        admitHttp: access.admitHttp,
        feeds: () => feedHealth.list(),
        announce: (a) => executions.executions.announce(a),
        webDir: config.gateway.webDir,
        peers: worker?.admin,
        log,
      });
      if (deps.metrics) registerMetricsRoute(app, deps.metrics, log);
      registerFeedRoutes(app, feedHealth);
      deps.bars?.routes(app, {
        resolvers,
        authenticator: access.authenticator,
        gate: readGate,
        refuseOrigin: (res, req, headers) => gw.refuseOrigin(res, req, headers, 'read bar history'),
      });
      registerServiceApi(app, {
        ...(userAlerts?.serviceApi ?? {}),
        serviceToken: config.auth.serviceToken,
        serviceTokens: config.auth.serviceTokens,
        scopeRefusals,
        executions: executions.executions,
        portfolio: deps.portfolio.api,
        log,
      });
    },
    onConnectionOpen: (conn) => {
      access.onOpen(conn);
      userAlerts?.reportAccess(conn.principal);
      log.info({ conn: conn.id, ip: conn.ip, user: conn.principal.user, enc: conn.codec.encoding }, 'connection open');
    },
    onConnectionClose: (conn, code) => {
      access.onClose(conn);
      const fields = { conn: conn.id, ip: conn.ip, user: conn.principal.user, code, duration_ms: Date.now() - conn.openedAt };
      if (code === CLOSE_SLOW_CONSUMER) log.warn(fields, 'connection closed: slow consumer');
      else log.info(fields, 'connection closed');
    },
  });
  lifecycle.add('gateway', async () => {
    // the close frames go out, then every socket left is closed: idle HTTP keep-alive
    // connections would otherwise be answered by a stopped engine (its store and bus closed)
    // until uWS's idle timeout
    await gateway.close(1001, 'server shutting down');
  });
  sources.gateway = gateway;
  sources.limits = access.limits;
  sources.books = books;
  if (router) sources.replays = router;
  // feed metrics on a gateway: every feed that reports on the bus, in this process or another
  sources.feeds = feedList;
  if (sources.tickAge) gateway.hub.onUpdate = sources.tickAge.onUpdate;
  books.bind(gateway.hub);
  const stopNotice = bus.onStatus?.(busOutageNotice(gateway.hub));
  if (stopNotice) lifecycle.add('bus outage notice', stopNotice);

  lifecycle.add('admin console', () => admin?.stop());
  await gateway.listen(config.host, config.port, { shared: worker !== undefined });
  log.info(
    { host: config.host, port: gateway.port, mode, answersHosts: answeredHosts(config.gateway.allowedHosts, config.host) },
    `tickwire gateway listening on ws://${config.host}:${gateway.port}/v1/stream`,
  );
  return { gateway, access, delay, feedHealth, books, admin: admin! };
}

/** Tells `system` subscribers once when market data goes stale, and once when it flows again. */
function busOutageNotice(hub: Hub): (state: string) => void {
  let interrupted = false;
  return (state) => {
    if (state === 'disconnected' && !interrupted) {
      interrupted = true;
      hub.inject('system', {
        d: {
          level: 'warning',
          title: 'Market data interrupted',
          message: 'This gateway lost its connection to the message bus: prices are stale until it reconnects. Your connection stays open.',
          t: Date.now(),
        },
      });
    } else if (state === 'connected' && interrupted) {
      interrupted = false;
      hub.inject('system', { d: { level: 'info', title: 'Market data resumed', message: 'The message bus is back: live prices flow again.', t: Date.now() } });
    }
  };
}

/** Subject on which the gateway holding HTTP-stream session <id> takes POSTs from other gateway processes. */
export const httpStreamSubject = (session: string): string => `gw.hs.${session}`;
const HTTP_STREAM_FORWARD_TIMEOUT_MS = 2000;
/** How long a new session waits for its subscription to reach NATS before its stream starts anyway. */
const HTTP_STREAM_ANNOUNCE_TIMEOUT_MS = 2000;
const DELIVERED = new Uint8Array([1]);
const NOT_DELIVERED = new Uint8Array([0]);

/**
 * Where a POST of the HTTP-streaming fallback goes when its session is not on this event loop:
 * first the other workers of this process, then, on NATS, whichever gateway process holds it
 * (each session answers requests on its own subject while it is open, so a load balancer needs
 * no affinity). Embedded engines have one process: the workers are all there is.
 */
function httpStreamRouting(
  bus: Bus,
  workers: ((session: string, body: Uint8Array) => Promise<boolean>) | undefined,
): Pick<GatewayOptions, 'forwardHttpStream' | 'announceHttpStream'> {
  const requests = bus.requests; // NATS: other gateway processes; the in-process bus has none
  if (!requests) return workers ? { forwardHttpStream: workers } : {};
  return {
    forwardHttpStream: async (session, body) => {
      if (workers && (await workers(session, body))) return true;
      try {
        const reply = await requests.request(httpStreamSubject(session), body, HTTP_STREAM_FORWARD_TIMEOUT_MS);
        return reply[0] === 1;
      } catch {
        return false; // no gateway holds it (no responders), or it did not answer in time
      }
    },
    announceHttpStream: (session, deliver) => {
      const stop = requests.serve(httpStreamSubject(session), 'gw-hs', async (body) => (deliver(body) ? DELIVERED : NOT_DELIVERED));
      // the subscription reaches the server with the next write; a flush (PING/PONG) returns once
      // the server has it, so a POST through another gateway finds it. Bounded: with NATS away
      // the session still starts (reachable through this gateway), and no one waits for ever.
      let timer: NodeJS.Timeout | undefined;
      const ready = Promise.race([
        bus.flush().then(
          () => undefined,
          () => undefined,
        ),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, HTTP_STREAM_ANNOUNCE_TIMEOUT_MS))),
      ]).finally(() => clearTimeout(timer));
      return { ready, stop };
    },
  };
}
