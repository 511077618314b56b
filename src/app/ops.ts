import type { Bus } from '../bus/bus.js';
import { BusTap } from '../ops/bus-tap.js';
import { createMetrics } from '../ops/metrics.js';
import type { EngineMetrics, MetricsSources } from '../ops/metrics.js';
import { OpsServer } from '../ops/ops-server.js';
import { readiness } from '../ops/readiness.js';
import type { Readiness } from '../ops/readiness.js';
import { startStatsLog } from '../ops/stats-log.js';
import { TickAgeHistogram } from '../ops/tick-age.js';
import { VERSION } from '../ops/version.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { EngineContext } from './context.js';
import type { FeedsParts } from './feeds.js';

export interface Observability {
  /** the bus as the publisher and the hub use it: counts traffic for metrics */
  readonly busTap: BusTap;
  /** /ready: bus and store reachable */
  readonly ready: () => Readiness;
  /** what /metrics and the stats log read; the feeds and gateway builders add their parts */
  readonly sources: MetricsSources;
  readonly metrics: EngineMetrics | undefined;
  /** start the periodic stats log line (once every part has added its source) */
  startStatsLog(): void;
}

export function buildObservability(ctx: EngineContext, bus: Bus, store: LastValueStore | undefined): Observability {
  const { config, roles, mode, lifecycle, log } = ctx;
  const busTap = new BusTap(bus);
  const ready = readiness({ bus: () => bus.connected, ...(store ? { store: () => store.ready } : {}) });
  const roleList = [roles.gateway ? 'gateway' : '', ...roles.feeds.map((f) => `feed:${f}`), roles.portfolio ? 'portfolio' : '', roles.alerts ? 'alerts' : '']
    .filter(Boolean)
    .join(',');
  const sources: MetricsSources = {
    info: { mode, roles: roleList, version: VERSION },
    bus: busTap,
    busConnected: () => bus.connected,
    ...(store ? { store } : {}),
    ...(config.ops.metrics && roles.gateway ? { tickAge: new TickAgeHistogram() } : {}),
  };
  const local = config.ops.metrics ? createMetrics(sources) : undefined;
  // in a gateway worker thread, /metrics answers with the sum over the workers
  const metrics = local && ctx.worker ? ctx.worker.metrics(local) : local;
  return {
    busTap,
    ready,
    sources,
    metrics,
    startStatsLog: () => lifecycle.add('stats log', startStatsLog(log, sources, config.ops.statsLogSec)),
  };
}

/** /health, /ready and /metrics on `ops.port` for a process without a gateway (feeds, portfolio). */
export async function buildOpsServer(ctx: EngineContext, obs: Observability, feeds: FeedsParts | undefined): Promise<OpsServer | undefined> {
  const { config, mode, log } = ctx;
  if (config.ops.port <= 0) return undefined;
  const bus = obs.sources.busConnected ?? (() => false);
  const ops = await OpsServer.listen({
    host: config.host,
    port: config.ops.port,
    ready: obs.ready,
    log,
    health: () => ({ mode, bus: bus() ? 'connected' : 'disconnected', feeds: feeds?.host.health() ?? [] }),
    ...(obs.metrics ? { metrics: obs.metrics } : {}),
  });
  ctx.lifecycle.add('ops server', () => ops.close());
  log.info({ host: config.host, port: ops.port }, `ops endpoints on http://${config.host}:${ops.port}/health, /ready, /metrics`);
  return ops;
}
