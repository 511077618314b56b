import type { ScopeRefusalCounts } from '../access/service-tokens.js';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { freshFlight } from '../core/fresh-flight.js';
import type { FeedState } from '../../feeds/sdk/adapter.js';
import type { Gateway } from '../gateway/server.js';
import type { TickPublisher } from '../ingest/tick-publisher.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { RedisLastValueStoreStats } from '../store/redis-last-value-store.js';
import type { BusTap } from './bus-tap.js';
import type { TickAgeHistogram } from './tick-age.js';
import type { LimitStats } from '../gateway/limits.js';
import type { ReplayStats } from '../executions/execution-router.js';
import type { ReplayBudgetStats } from '../executions/replay-budget.js';
import type { AlertServiceMetrics } from '../alerts/alert-metrics.js';
import { FIRE_LATENCY_BUCKETS } from '../alerts/alert-metrics.js';
import type { BookChannelStats } from '../fanout/book-channels.js';

/**
 * The feed health fields metrics use: satisfied by the in-process FeedHost's records and by the
 * bus-wide feed health view (optional fields are exported when present).
 */
export interface FeedHealthLike {
  id: string;
  state: FeedState;
  /** provider messages of any kind (data, heartbeats, control) */
  messages: number;
  /** ticks handed to the engine */
  ticks?: number;
  lastMessageAt?: number;
  lastMessageAgeMs?: number;
  reconnects?: number;
  gaps?: number;
  errors?: number;
  /** false when a feed in another process stopped reporting */
  reporting?: boolean;
}

/**
 * What the metrics read, at scrape time. Fields are looked up on every scrape, so parts created
 * later (feeds after the gateway) can be filled in as they start.
 */
export interface MetricsSources {
  info?: { mode: string; roles: string; version: string };
  gateway?: Gateway;
  bus?: BusTap;
  busConnected?: () => boolean;
  publisher?: TickPublisher;
  /** feed health per feed: the in-process FeedHost, or a view of feed health from the bus */
  feeds?: () => readonly FeedHealthLike[];
  store?: LastValueStore & { readonly stats?: RedisLastValueStoreStats; readonly pendingKeys?: number };
  /** the durable execution log (JetStream, Redis or memory; `disabled` when NATS has no JetStream) */
  executionsLog?: { readonly kind: string; readonly ready: boolean };
  tickAge?: TickAgeHistogram;
  /** 403s of service tokens without a route's scope (src/access/service-tokens.ts) */
  scopeRefusals?: ScopeRefusalCounts;
  /** limit enforcement counts (src/gateway/limits.ts) */
  limits?: { readonly stats: LimitStats };
  /** durable replays of the executions channel (the gateway's ExecutionRouter) */
  replays?: { readonly stats: ReplayStats; readonly budget: { readonly stats: ReplayBudgetStats } };
  /** order book channels of the gateway (src/fanout/book-channels.ts) */
  books?: { readonly stats: BookChannelStats };
  /** the alert services of this process (the alert-service role): real-time and delayed market data */
  alerts?: { readonly realtime: AlertServiceMetrics; readonly delayed: AlertServiceMetrics };
  /** the portfolio service of this process (the portfolio role) */
  portfolio?: PortfolioMetricsSource;
}

/** What the portfolio service exposes to /metrics (src/portfolio/portfolio-service.ts). */
export interface PortfolioMetricsSource {
  readonly stats: {
    readonly applied: number;
    readonly saveFailures: number;
    readonly incomplete: number;
    readonly evicted: number;
    readonly rebuiltFromPut: number;
  };
  readonly heldBooks: number;
  readonly unsavedUsers: number;
}

/** Renders of /metrics start at least this far apart, however many scrapes arrive (src/core/fresh-flight.ts). */
export const RENDER_MIN_GAP_MS = 100;

export interface EngineMetrics {
  readonly registry: Registry;
  readonly sources: MetricsSources;
  readonly contentType: string;
  render(): Promise<string>;
}

const FEED_STATES: readonly FeedState[] = ['starting', 'connecting', 'connected', 'stale', 'reconnecting', 'auth_failed', 'error', 'stopped'];

/**
 * Prometheus metrics for one engine process. The hot path only increments plain numbers
 * (gateway counters, hub stats, publisher stats, bus tap, store stats); every metric here reads
 * them in a `collect()` callback when /metrics is scraped. A registry per engine (not the
 * prom-client global) so several engines can run in one process (tests).
 */
export function createMetrics(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}): EngineMetrics {
  const registry = new Registry();
  const registers = [registry];
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry }); // process_*, nodejs_* incl. event-loop lag

  /**
   * An unlabelled metric reads 0 after reset(): without its part in this process (no gateway in a
   * feed process, no last-value store without REDIS_URL) it must export no series at all, or a
   * feed process reports `tickwire_store_ready 0` and gateway figures of 0.
   */
  const absentWhenUnread = (metric: Counter | Gauge, read: (s: MetricsSources) => number | undefined): void => {
    const get = metric.get.bind(metric);
    metric.get = async () => {
      const out = await get();
      return read(sources) === undefined ? { ...out, values: [] } : out;
    };
  };
  /** a counter mirroring a plain number */
  const counter = (name: string, help: string, read: (s: MetricsSources) => number | undefined): void => {
    const c = new Counter({
      name,
      help,
      registers,
      collect() {
        const v = read(sources);
        this.reset();
        if (v !== undefined) this.inc(v);
      },
    });
    absentWhenUnread(c, read);
  };
  /** a labelled counter mirroring a record of plain numbers */
  const counterBy = <L extends string>(name: string, help: string, label: L, read: (s: MetricsSources) => Record<string, number> | undefined): void => {
    new Counter<L>({
      name,
      help,
      registers,
      labelNames: [label],
      collect() {
        this.reset();
        for (const [k, v] of Object.entries(read(sources) ?? {})) this.inc({ [label]: k } as Record<L, string>, v);
      },
    });
  };
  const gauge = (name: string, help: string, read: (s: MetricsSources) => number | undefined): void => {
    const g = new Gauge({
      name,
      help,
      registers,
      collect() {
        const v = read(sources);
        this.reset();
        if (v !== undefined) this.set(v);
      },
    });
    absentWhenUnread(g, read);
  };

  new Gauge({
    name: 'tickwire_info',
    help: 'Engine identity: mode (embedded|nats), roles in this process, version',
    registers,
    labelNames: ['mode', 'roles', 'version'],
    collect() {
      this.reset();
      if (sources.info) this.set(sources.info, 1);
    },
  });

  // gateway: connections and subscriptions
  const gw = (s: MetricsSources): Gateway | undefined => s.gateway;
  gauge('tickwire_connections', 'WebSocket connections open now', (s) => gw(s)?.connections.size);
  counter('tickwire_connections_opened_total', 'WebSocket connections accepted', (s) => gw(s)?.counters.connectionsOpened);
  counter('tickwire_connections_closed_total', 'WebSocket connections closed (any reason)', (s) => gw(s)?.counters.connectionsClosed);
  new Gauge({
    name: 'tickwire_subscriptions',
    help: 'Client subscriptions now, by channel kind (trade, quote, ticker, bar.1s, bar.1m, portfolio, executions, system)',
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      const g = sources.gateway;
      if (!g) return;
      const byKind: Record<string, number> = {};
      for (const c of g.hub.channelStats()) {
        const colon = c.channel.indexOf(':');
        const kind = colon < 0 ? c.channel : c.channel.slice(0, colon);
        byKind[kind] = (byKind[kind] ?? 0) + c.subscribers;
      }
      for (const [kind, n] of Object.entries(byKind)) this.set({ kind }, n);
    },
  });
  gauge('tickwire_upstream_channels', 'Channels this gateway is subscribed to on the bus', (s) => gw(s)?.hub.upstreamCount);
  counter('tickwire_subscribes_total', 'Channel subscriptions accepted', (s) => gw(s)?.counters.subscribes);
  counter('tickwire_unsubscribes_total', 'Channel unsubscriptions', (s) => gw(s)?.counters.unsubscribes);

  // gateway: limits (429 at the upgrade, RATE_LIMIT frames, 4008 closes)
  counterBy('tickwire_limit_refusals_total', 'Requests refused by a configured limit, by limit', 'limit', (s) => {
    const st = s.limits?.stats;
    const capacity = gw(s)?.capacity;
    return {
      ...(st
        ? {
            rate_limited_frames: st.rateLimitedFrames,
            rate_limit_closes: st.rateLimitCloses,
            connections_per_user: st.refusedPerUser,
            new_connections_per_ip: st.refusedPerIp,
            http_requests_per_ip: st.refusedHttpPerIp,
            verifying_per_ip: st.refusedVerifyingPerIp,
            open_per_ip: st.refusedOpenPerIp,
            auths_per_connection: st.refusedAuthsPerConnection,
            frames_per_ip: st.rateLimitedFramesPerIp,
          }
        : {}),
      ...(capacity ? { max_connections: capacity.refused } : {}),
    };
  });
  gauge(
    'tickwire_connections_max',
    'Connection ceiling of this gateway (gateway.maxConnections); upgrades beyond it get 503',
    (s) => gw(s)?.capacity.maxConnections,
  );

  // gateway: order books (book:SYM), one shared book per symbol
  gauge('tickwire_books', 'Order books the gateway holds (one per symbol with subscribers, delayed ones apart)', (s) => s.books?.stats.books);
  counter('tickwire_book_updates_applied_total', 'Book changes from the bus applied to the gateway books', (s) => s.books?.stats.applied);
  counter(
    'tickwire_book_emissions_total',
    'Book updates emitted to subscribers: one per (channel, depth, tier) window with a change',
    (s) => s.books?.stats.emitted,
  );
  counter('tickwire_book_resyncs_total', 'Times a gateway book lost continuity (seq gap, new epoch) and synchronised again', (s) => s.books?.stats.resyncs);

  // gateway: durable replays (executions `since` and snapshots)
  counter('tickwire_replays_total', 'Durable replays started (executions subscribe with since, or its snapshot)', (s) => s.replays?.stats.replays);
  counter(
    'tickwire_replays_aborted_total',
    'Durable replays stopped early: superseded by a new subscribe of the channel, or the subscriber left',
    (s) => s.replays?.stats.aborted,
  );
  gauge('tickwire_replays_active', 'Durable replays running now', (s) => s.replays?.stats.active);
  counter('tickwire_replayed_events_total', 'Events sent by durable replays', (s) => s.replays?.stats.replayed);
  counterBy('tickwire_replay_waits_total', 'Replay pages that waited, by reason', 'reason', (s) => {
    const r = s.replays;
    return r ? { user_budget: r.budget.stats.userWaits, gateway_budget: r.budget.stats.gatewayWaits, slow_consumer: r.stats.paused } : undefined;
  });

  // gateway: data path
  counter('tickwire_updates_in_total', 'Updates the hub received from the bus (decoded)', (s) => gw(s)?.hub.stats.updatesIn);
  counter('tickwire_updates_out_total', 'Updates emitted per (channel, throttle tier) after coalescing', (s) => gw(s)?.hub.stats.updatesOut);
  counter('tickwire_updates_conflated_total', 'Source updates replaced by newer ones before emission (latest-value channels)', (s) =>
    gw(s)?.hub.conflatedTotal(),
  );
  counterBy('tickwire_updates_dropped_total', 'Updates not delivered, by reason', 'reason', (s) => {
    const g = gw(s);
    return g ? { bad_payload: g.hub.stats.badPayloads } : undefined;
  });
  counter('tickwire_frames_encoded_total', 'Frames encoded (once per emission and encoding in use)', (s) => gw(s)?.hub.stats.framesPublished);
  counter(
    'tickwire_throttle_off_grid_total',
    'Throttled emissions sent off the throttle.batchMs grid: the gateway had sent nothing throttled for a whole step (or a durable replay flushed its channel)',
    (s) => gw(s)?.hub.stats.offGrid,
  );
  counter('tickwire_frames_out_total', 'Frames sent to clients through topics (encoded frames times subscribers)', (s) => gw(s)?.hub.stats.framesOut);
  counter('tickwire_bytes_out_total', 'Bytes sent to clients through topics (frame bytes times subscribers)', (s) => gw(s)?.hub.stats.bytesOut);

  // gateway: slow consumers, errors, auth
  counter('tickwire_slow_consumer_episodes_total', 'Times a connection went over the high-water mark and was paused', (s) => gw(s)?.counters.slowEpisodes);
  counter('tickwire_slow_consumer_resyncs_total', 'Paused connections that drained and were resynced with latest values', (s) => gw(s)?.counters.resyncs);
  counter(
    'tickwire_slow_consumer_lag_episodes_total',
    'Slow-consumer episodes started by read lag (slow.lagMs) rather than buffered bytes',
    (s) => gw(s)?.counters.lagEpisodes,
  );
  counter('tickwire_slow_consumer_closes_total', 'Connections closed with 4009 (slow consumer)', (s) => gw(s)?.counters.slowDisconnects);
  counterBy(
    'tickwire_auth_failures_total',
    'Upgrades and HTTP-stream opens refused for their token, by reason (401; 503 jwks_unavailable when it could not be checked)',
    'reason',
    (s) => {
      const errors = gw(s)?.counters.protocolErrors;
      if (!errors) return undefined;
      const out: Record<string, number> = {};
      for (const [k, v] of Object.entries(errors)) if (k.startsWith('auth:')) out[k.slice(5)] = v;
      return out;
    },
  );
  new Counter({
    name: 'tickwire_service_scope_refusals_total',
    help: 'Service API and admin console requests refused 403 because the service token lacks the scope, by token name and scope',
    labelNames: ['token', 'scope'],
    registers,
    collect() {
      this.reset();
      for (const e of sources.scopeRefusals?.entries() ?? []) this.inc({ token: e.token, scope: e.scope }, e.count);
    },
  });
  counterBy('tickwire_protocol_errors_total', 'Error frames sent to clients, by code', 'code', (s) => {
    const errors = gw(s)?.counters.protocolErrors;
    if (!errors) return undefined;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(errors)) if (!k.startsWith('auth:')) out[k] = v;
    return out;
  });

  // bus
  gauge('tickwire_bus_connected', '1 when the bus (NATS or in-process) can deliver', (s) => (s.busConnected ? (s.busConnected() ? 1 : 0) : undefined));
  counter('tickwire_bus_messages_in_total', 'Bus messages delivered to subscriptions in this process', (s) => s.bus?.messagesIn);
  counter('tickwire_bus_messages_out_total', 'Bus messages published by this process', (s) => s.bus?.messagesOut);

  // feeds and ingest
  const feeds = (s: MetricsSources): readonly FeedHealthLike[] => s.feeds?.() ?? [];
  new Gauge({
    name: 'tickwire_feed_up',
    help: '1 when the feed is connected and delivering',
    labelNames: ['feed'],
    registers,
    collect() {
      this.reset();
      for (const f of feeds(sources)) this.set({ feed: f.id }, f.state === 'connected' && f.reporting !== false ? 1 : 0);
    },
  });
  new Gauge({
    name: 'tickwire_feed_state',
    help: 'Feed state: 1 for the current state',
    labelNames: ['feed', 'state'],
    registers,
    collect() {
      this.reset();
      for (const f of feeds(sources)) for (const state of FEED_STATES) this.set({ feed: f.id, state }, f.state === state ? 1 : 0);
    },
  });
  new Counter({
    name: 'tickwire_feed_messages_total',
    help: 'Messages the feed received from its provider (data, heartbeats, control)',
    labelNames: ['feed'],
    registers,
    collect() {
      this.reset();
      for (const f of feeds(sources)) this.inc({ feed: f.id }, f.messages);
    },
  });
  new Gauge({
    name: 'tickwire_feed_last_message_age_seconds',
    help: 'Seconds since the feed last heard from its provider',
    labelNames: ['feed'],
    registers,
    collect() {
      this.reset();
      const now = Date.now();
      for (const f of feeds(sources)) {
        const ageMs = f.lastMessageAgeMs ?? (f.lastMessageAt !== undefined ? now - f.lastMessageAt : undefined);
        if (ageMs !== undefined) this.set({ feed: f.id }, ageMs / 1000);
      }
    },
  });
  for (const [field, name, help] of [
    ['ticks', 'tickwire_feed_ticks_total', 'Ticks the feed handed to the engine'],
    ['reconnects', 'tickwire_feed_reconnects_total', 'Feed reconnections to its provider'],
    ['gaps', 'tickwire_feed_gaps_total', 'Provider sequence gaps detected by the feed'],
    ['errors', 'tickwire_feed_errors_total', 'Errors reported by the feed'],
  ] as const) {
    new Counter({
      name,
      help,
      labelNames: ['feed'],
      registers,
      collect() {
        this.reset();
        for (const f of feeds(sources)) {
          const v = f[field];
          if (typeof v === 'number') this.inc({ feed: f.id }, v);
        }
      },
    });
  }
  counter('tickwire_ticks_published_total', 'Ticks published to the bus by this process (including derived)', (s) => s.publisher?.stats.published);
  counter('tickwire_ticks_derived_total', 'Derived ticks (tickers, bars) published', (s) => s.publisher?.stats.derived);
  counterBy('tickwire_ticks_rejected_total', 'Ticks from feeds that were not published, by reason', 'reason', (s) => {
    const st = s.publisher?.stats;
    return st
      ? { unknown_symbol: st.rejectedUnknownSymbol, inactive_source: st.rejectedInactiveSource, bad_book: st.rejectedBadBook, bad_value: st.rejectedBadValue }
      : undefined;
  });

  // last-value store
  gauge('tickwire_store_ready', '1 when the last-value store is reachable', (s) => (s.store ? (s.store.ready ? 1 : 0) : undefined));
  gauge('tickwire_executions_log_ready', '1 when the execution log is reachable (its own connection: JetStream or Redis); 0 when down or off', (s) =>
    s.executionsLog ? (s.executionsLog.kind !== 'disabled' && s.executionsLog.ready ? 1 : 0) : undefined,
  );
  gauge('tickwire_store_pending_keys', 'Last values waiting for the next batched write', (s) => s.store?.pendingKeys);
  counter('tickwire_store_writes_total', 'Last values written to the store', (s) => s.store?.stats?.written);
  counter('tickwire_store_writes_coalesced_total', 'Last values replaced by a newer one before they were written', (s) => s.store?.stats?.coalesced);
  counter(
    'tickwire_store_writes_dropped_total',
    'Last values lost (new keys over redis.maxPendingKeys while the store is unreachable, or pending at shutdown)',
    (s) => s.store?.stats?.dropped,
  );
  counter('tickwire_store_errors_total', 'Store writes or reads that failed', (s) => s.store?.stats?.errors);

  // alert service (docs/alerts.md): one series per market data kind its rules watch
  const alertServices = (s: MetricsSources): [string, AlertServiceMetrics][] =>
    s.alerts
      ? [
          ['realtime', s.alerts.realtime],
          ['delayed', s.alerts.delayed],
        ]
      : [];
  const alertMetric = (kind: 'gauge' | 'counter', name: string, help: string, read: (a: AlertServiceMetrics) => number): void => {
    const collect = function (this: Counter<'market'> | Gauge<'market'>): void {
      this.reset();
      for (const [market, a] of alertServices(sources)) {
        if (this instanceof Gauge) this.set({ market }, read(a));
        else this.inc({ market }, read(a));
      }
    };
    if (kind === 'gauge') new Gauge({ name, help, labelNames: ['market'], registers, collect });
    else new Counter({ name, help, labelNames: ['market'], registers, collect });
  };
  // the portfolio service (only where it runs: absent elsewhere)
  counter('tickwire_portfolio_executions_applied_total', 'Executions the portfolio service applied to position books', (s) => s.portfolio?.stats.applied);
  gauge('tickwire_portfolio_books_held', 'Position books held in memory (the rest are in the position store, read back on use)', (s) => s.portfolio?.heldBooks);
  gauge(
    'tickwire_portfolio_unsaved_users',
    'Users whose book in memory is ahead of the position store (the store is down, or the save is under way)',
    (s) => s.portfolio?.unsavedUsers,
  );
  counter('tickwire_portfolio_save_failures_total', 'Saves of position books that failed (tried again)', (s) => s.portfolio?.stats.saveFailures);
  counter(
    'tickwire_portfolio_books_marked_incomplete_total',
    'Times a book was marked incomplete: the execution log no longer holds executions it needs (GET answers 409 INCOMPLETE until a PUT)',
    (s) => s.portfolio?.stats.incomplete,
  );
  counter(
    'tickwire_portfolio_books_rebuilt_from_put_total',
    "Books read back that the position store had lost, or held from before the user's last PUT, rebuilt from that PUT's record and the executions after it",
    (s) => s.portfolio?.stats.rebuiltFromPut,
  );
  counter('tickwire_portfolio_books_evicted_total', 'Idle books that left memory (read back from the store on use)', (s) => s.portfolio?.stats.evicted);

  alertMetric('gauge', 'tickwire_alert_rules', 'Alert rules loaded (live, not expired)', (a) => a.engine.stats.rules);
  alertMetric(
    'gauge',
    'tickwire_alert_rules_held',
    "Alert rules held, not evaluated: their user's current token no longer entitles the symbol at the rule's level",
    (a) => a.engine.stats.held,
  );
  alertMetric('counter', 'tickwire_alert_evaluations_total', 'Market ticks the alert service evaluated against its rules', (a) => a.stats.ticks);
  alertMetric('counter', 'tickwire_alert_firings_total', 'Alert firings (a rule crossed its level outside its cooldown)', (a) => a.engine.stats.fired);
  alertMetric(
    'counter',
    'tickwire_alert_suppressed_total',
    "Crossings swallowed by a rule's cooldown or its user's firing budget (not delivered)",
    (a) => a.engine.stats.suppressed,
  );
  alertMetric(
    'counter',
    'tickwire_alert_over_budget_total',
    'Of the swallowed crossings: those of users whose rules had fired alerts.firingsPerUserPerMin times in the last minute',
    (a) => a.engine.stats.overBudget,
  );
  alertMetric('counter', 'tickwire_alert_expired_total', 'Rules removed because they expired', (a) => a.engine.stats.expired);
  alertMetric('counter', 'tickwire_alert_deliveries_total', 'Firings appended to the notifications log', (a) => a.stats.delivered);
  alertMetric(
    'counter',
    'tickwire_alert_delivery_errors_total',
    'Firing appends that failed (kept in the outbox and tried again)',
    (a) => a.stats.deliveryErrors,
  );
  alertMetric('gauge', 'tickwire_alert_outbox', 'Firings whose append failed, waiting to be tried again', (a) => a.outbox);
  alertMetric('counter', 'tickwire_alert_store_commits_total', 'Alert store commits (rule states and firings)', (a) => a.stats.commits);
  alertMetric(
    'counter',
    'tickwire_alert_store_errors_total',
    'Alert store commits or outbox acks that failed (commits are retried)',
    (a) => a.stats.commitErrors + a.stats.ackErrors,
  );
  alertMetric('counter', 'tickwire_alert_bad_payloads_total', 'Undecodable bus messages the alert service skipped', (a) => a.stats.badPayloads);
  registry.registerMetric(fireLatencyMetric(sources) as never);

  if (sources.tickAge) registry.registerMetric(sources.tickAge.metric() as never);

  return {
    registry,
    sources,
    contentType: registry.contentType,
    // unauthenticated on the gateway port: a flood of scrapes shares renders (at most one per
    // RENDER_MIN_GAP_MS), and an answer is never from a render older than its request
    render: freshFlight(() => registry.metrics(), RENDER_MIN_GAP_MS),
  };
}

/** `tickwire_alert_fire_latency_seconds`: the alert services' plain-number histograms, read when scraped. */
function fireLatencyMetric(sources: MetricsSources): object {
  const name = 'tickwire_alert_fire_latency_seconds';
  const help = 'Alert fire latency: from the tick that crossed the level to the notification appended to the log, seconds';
  const get = async (): Promise<object> => {
    const values: { metricName: string; labels: Record<string, string | number>; value: number }[] = [];
    for (const [market, a] of sources.alerts
      ? ([
          ['realtime', sources.alerts.realtime],
          ['delayed', sources.alerts.delayed],
        ] as const)
      : []) {
      let cum = 0;
      FIRE_LATENCY_BUCKETS.forEach((le, i) => {
        cum += a.latency.counts[i]!;
        values.push({ metricName: `${name}_bucket`, labels: { market, le }, value: cum });
      });
      values.push({ metricName: `${name}_bucket`, labels: { market, le: '+Inf' }, value: a.latency.count });
      values.push({ metricName: `${name}_sum`, labels: { market }, value: a.latency.sumMs / 1000 });
      values.push({ metricName: `${name}_count`, labels: { market }, value: a.latency.count });
    }
    return { name, help, type: 'histogram', aggregator: 'sum', values };
  };
  return { name, help, type: 'histogram', labelNames: ['market'], aggregator: 'sum', get, reset: () => undefined, collect: () => undefined };
}
