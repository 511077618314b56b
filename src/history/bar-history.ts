import type { TemplatedApp } from 'uWebSockets.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { Logger } from '../core/logger.js';
import type { ChannelResolver } from '../fanout/channels.js';
import type { Authenticator } from '../gateway/auth-hook.js';
import type { BarStore } from './bar-store.js';
import { MemoryBarStore } from './bar-store.js';
import { registerBarsRoute } from './bars-route.js';
import type { BarsRouteOptions } from './bars-route.js';
import { RedisBarStore } from './redis-bar-store.js';

export interface BarHistoryContext {
  config: Readonly<Config>;
  registry: InstrumentRegistry;
  log: Logger;
  /** this process runs a gateway / feeds */
  gateway: boolean;
  feeds: boolean;
  /** a bar store kept elsewhere: an embedded gateway worker reads the main thread's (src/workers) */
  shared?: BarStore;
}

/** Bar history as the composition root wires it (docs/protocol.md#bar-history). */
export interface BarHistory {
  /**
   * Redis with `redisUrl` (feed processes write, gateways read); otherwise the main thread's for
   * an embedded gateway worker; otherwise memory when the feeds and the gateway share this
   * process (or this is the main thread of embedded workers); otherwise none (no history in
   * scale-out without Redis).
   * Hand it to the TickPublisher (`bars`) and to the MarketChannelResolver.
   */
  readonly store: BarStore | undefined;
  /** GET /v1/bars on the gateway's app, with the gateway's resolvers and authenticator */
  routes(
    app: TemplatedApp,
    deps: {
      resolvers: readonly ChannelResolver[];
      authenticator: Authenticator;
      gate?: BarsRouteOptions['gate'];
      refuseOrigin?: BarsRouteOptions['refuseOrigin'];
    },
  ): void;
  close(): Promise<void>;
}

export function buildBarHistory(ctx: BarHistoryContext): BarHistory {
  const { config, log } = ctx;
  const windowBars = config.history.windowBars;
  // replaced bar versions are kept as long as a delayed user is behind (docs/protocol.md#bar-history)
  const keepRevisionsMs = config.auth.delayMs;
  const own = (): BarStore | undefined =>
    config.redisUrl
      ? new RedisBarStore({
          url: config.redisUrl,
          windowBars,
          keepRevisionsMs,
          keyPrefix: config.history.redisKeyPrefix,
          flushMs: config.redis.flushMs,
          commandTimeoutMs: config.redis.commandTimeoutMs,
          pingIntervalMs: config.redis.pingIntervalMs,
          log,
          name: ctx.gateway ? 'tickwire-gateway-bars' : 'tickwire-feed-bars',
          // writers record their keep time; a gateway warns when it reads further behind (docs/operations.md)
          recordKeep: ctx.feeds,
          ...(ctx.gateway ? { readDelayMs: config.auth.delayMs } : {}),
        })
      : !config.natsUrl || (ctx.gateway && ctx.feeds)
        ? new MemoryBarStore({ windowBars, keepRevisionsMs })
        : undefined;
  const store = ctx.shared ?? own();
  return {
    store,
    routes(app, deps) {
      registerBarsRoute(app, {
        resolvers: deps.resolvers,
        authenticator: deps.authenticator,
        registry: ctx.registry,
        log,
        ...(deps.gate ? { gate: deps.gate } : {}),
        ...(deps.refuseOrigin ? { refuseOrigin: deps.refuseOrigin } : {}),
      });
    },
    close: async () => {
      await store?.close();
    },
  };
}
