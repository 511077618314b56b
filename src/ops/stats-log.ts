import type { Logger } from '../core/logger.js';
import type { MetricsSources } from './metrics.js';

/**
 * One info line every `intervalSec` with what an operator looks at first: connections,
 * subscriptions, upstream channels, rates over the interval, store backlog. Nothing per message.
 */
export function startStatsLog(log: Logger, sources: MetricsSources, intervalSec: number): () => void {
  if (intervalSec <= 0) return () => undefined;
  const snapshot = (): Record<string, number> => {
    const g = sources.gateway;
    return {
      updatesIn: g?.hub.stats.updatesIn ?? 0,
      framesOut: g?.hub.stats.framesOut ?? 0,
      bytesOut: g?.hub.stats.bytesOut ?? 0,
      busIn: sources.bus?.messagesIn ?? 0,
      published: sources.publisher?.stats.published ?? 0,
    };
  };
  let prev = snapshot();
  let prevAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const cur = snapshot();
    const secs = Math.max(0.001, (now - prevAt) / 1000);
    const rate = (k: string): number => Math.round((cur[k]! - prev[k]!) / secs);
    const g = sources.gateway;
    const line: Record<string, unknown> = {};
    if (g) {
      let subs = 0;
      for (const c of g.hub.channelStats()) subs += c.subscribers;
      Object.assign(line, {
        connections: g.connections.size,
        subscriptions: subs,
        upstream: g.hub.upstreamCount,
        updates_in_per_s: rate('updatesIn'),
        frames_out_per_s: rate('framesOut'),
        bytes_out_per_s: rate('bytesOut'),
        slow_closes: g.counters.slowDisconnects,
      });
    }
    if (sources.bus) line.bus_in_per_s = rate('busIn');
    if (sources.publisher) line.published_per_s = rate('published');
    if (sources.feeds) line.feeds = Object.fromEntries(sources.feeds().map((f) => [f.id, f.state]));
    if (sources.store?.stats) {
      line.store_pending = sources.store.pendingKeys ?? 0;
      line.store_dropped = sources.store.stats.dropped;
      line.store_ready = sources.store.ready;
    }
    log.info(line, 'stats');
    prev = cur;
    prevAt = now;
  }, intervalSec * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
