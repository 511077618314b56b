import type { Bus } from '../bus/bus.js';
import { MemoryBus } from '../bus/memory-bus.js';
import { NatsBus } from '../bus/nats-bus.js';
import { redactUrl } from '../ops/redact.js';
import type { LastValueStore } from '../store/last-value-store.js';
import { MemoryLastValueStore } from '../store/last-value-store.js';
import { RedisLastValueStore } from '../store/redis-last-value-store.js';
import type { EngineContext } from './context.js';

/** NATS when `NATS_URL` is set, the in-process bus otherwise. Closed last: it drains to NATS. */
export async function buildBus(ctx: EngineContext): Promise<Bus> {
  const { config, roles, log } = ctx;
  const bus: Bus =
    ctx.worker?.bus ??
    (config.natsUrl
      ? await NatsBus.connect({
          servers: config.natsUrl,
          name: roles.gateway
            ? 'tickwire-gateway'
            : roles.portfolio
              ? 'tickwire-portfolio'
              : roles.alerts
                ? 'tickwire-alerts'
                : `tickwire-feed-${roles.feeds.join('+')}`,
          onStatus: (state, detail) => log.info({ state, detail }, 'nats connection'),
        })
      : new MemoryBus());
  ctx.lifecycle.add('bus', () => bus.close());
  return bus;
}

/**
 * Last values: Redis when configured (shared by every process); otherwise, when the publisher and
 * the gateway share this process, memory; none in a process that neither publishes nor serves.
 */
export async function buildStore(ctx: EngineContext): Promise<LastValueStore | undefined> {
  const { config, roles, log } = ctx;
  // a gateway worker thread of an embedded engine reads the main thread's last values
  if (ctx.worker?.store) return ctx.worker.store;
  if (config.redisUrl) {
    const store = new RedisLastValueStore({
      url: config.redisUrl,
      keyPrefix: config.redis.keyPrefix,
      flushMs: config.redis.flushMs,
      maxPendingKeys: config.redis.maxPendingKeys,
      commandTimeoutMs: config.redis.commandTimeoutMs,
      pingIntervalMs: config.redis.pingIntervalMs,
      log,
      name: roles.gateway ? 'tickwire-gateway' : 'tickwire-feed',
    });
    ctx.lifecycle.add('last-value store', () => store.close()); // flushes pending writes
    if (!(await store.waitReady(5000))) {
      log.warn({ redis: redactUrl(config.redisUrl) }, 'redis not reachable yet: snapshots come from live data until it is (/ready reports it)');
    }
    return store;
  }
  return ctx.mode === 'embedded' || (roles.gateway && roles.feeds.length > 0) ? new MemoryLastValueStore() : undefined;
}
