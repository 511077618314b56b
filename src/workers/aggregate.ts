import { AggregatorRegistry } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { GatewayStats } from '../gateway/server.js';

/** GET /v1/stats across the gateway workers of one process: the sums, and each worker's share. */
export interface WorkersStats extends GatewayStats {
  workers: { worker: number; connections: number; channels: number; updatesOut: number }[];
}

/**
 * Sum the /v1/stats of every worker: connections, counters and hub figures add up; a channel
 * subscribed on several workers is listed once with its subscribers added per tier; the largest
 * send buffer is the largest of any worker; the connection ceiling is the process's (one value).
 */
export function sumStats(parts: readonly GatewayStats[]): WorkersStats {
  const first = parts[0];
  if (!first) throw new RangeError('sumStats: no worker answered');
  const channels = new Map<string, { channel: string; subscribers: number; tiers: Record<string, number> }>();
  for (const p of parts) {
    for (const c of p.channels) {
      const acc = channels.get(c.channel) ?? { channel: c.channel, subscribers: 0, tiers: {} };
      acc.subscribers += c.subscribers;
      for (const [tier, n] of Object.entries(c.tiers)) acc.tiers[tier] = (acc.tiers[tier] ?? 0) + n;
      channels.set(c.channel, acc);
    }
  }
  const gateway = sumNumbers(parts.map((p) => p.gateway)) as unknown as GatewayStats['gateway'];
  gateway.maxBufferedBytes = Math.max(...parts.map((p) => p.gateway.maxBufferedBytes));
  return {
    connections: parts.reduce((n, p) => n + p.connections, 0),
    channels: [...channels.values()],
    hub: sumNumbers(parts.map((p) => p.hub)) as unknown as GatewayStats['hub'],
    gateway,
    capacity: { ...first.capacity, refused: parts.reduce((n, p) => n + p.capacity.refused, 0) },
    workers: parts.map((p, worker) => ({ worker, connections: p.connections, channels: p.channels.length, updatesOut: p.hub.updatesOut })),
  };
}

/** Field-by-field sum of objects of numbers (nested records of numbers too). */
function sumNumbers(objs: readonly object[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const o of objs) {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === 'number') out[k] = ((out[k] as number | undefined) ?? 0) + v;
      else if (v && typeof v === 'object' && !Array.isArray(v)) out[k] = sumNumbers([(out[k] as object | undefined) ?? {}, v as object]);
    }
  }
  return out;
}

/**
 * How a metric combines over workers when it is not a sum: one value for the process
 * (`first`), or healthy only when every worker is (`min`).
 */
const AGGREGATORS: ReadonlyArray<[RegExp, 'first' | 'min' | 'max']> = [
  [/^tickwire_info$/, 'first'],
  [/^tickwire_connections_max$/, 'first'],
  [/^tickwire_feed_/, 'first'],
  [/^tickwire_(bus_connected|store_ready|executions_log_ready)$/, 'min'],
  [/_max_bytes$|^tickwire_max_/, 'max'],
];

/** Process-wide metrics (CPU, memory, handles): the main thread's figures, not a sum over threads. */
const PROCESS_WIDE = /^(process_|nodejs_)/;

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/**
 * One Prometheus text for the process: `main` is the main thread's registry (process CPU and
 * memory, and the feeds and publisher when they run there), `workers` each worker's. Counters and
 * gauges of the workers add up (connections, updates, frames, bytes), histograms add bucket by
 * bucket; see AGGREGATORS for the rest.
 */
export async function sumMetrics(main: readonly MetricJson[], workers: readonly (readonly MetricJson[])[]): Promise<{ text: string; contentType: string }> {
  // workers first: a `first` metric (the connection ceiling, the info) is a worker's; the main
  // thread has no gateway, and its gateway gauges read 0
  const sets: MetricJson[][] = [];
  for (const w of workers) sets.push(w.filter((m) => !PROCESS_WIDE.test(m.name)).map(withAggregator));
  sets.push(main.map(withAggregator));
  oneInfo(sets);
  const registry = AggregatorRegistry.aggregate(sets);
  return { text: await registry.metrics(), contentType: registry.contentType };
}

function withAggregator(m: MetricJson): MetricJson {
  const rule = AGGREGATORS.find(([re]) => re.test(m.name));
  return rule ? { ...m, aggregator: rule[1] } : m;
}

/**
 * `tickwire_info` identifies the process: one series, its `roles` those of every thread (the
 * workers' gateway first, then the main thread's feeds and services), as a process without
 * workers writes them. Each thread reporting its own roles made two series per process.
 */
function oneInfo(sets: MetricJson[][]): void {
  const infos = sets.flatMap((set) => set.filter((m) => m.name === 'tickwire_info'));
  const roles = [...new Set(infos.flatMap((m) => m.values.flatMap((v) => String(v.labels.roles ?? '').split(','))).filter((r) => r !== ''))].join(',');
  for (const m of infos) m.values = m.values.map((v) => ({ ...v, labels: { ...v.labels, roles } }));
}
