import type { Bus } from './bus/bus.js';
import { MemoryBus } from './bus/memory-bus.js';
import { NatsBus } from './bus/nats-bus.js';
import type { Config, ConfigInput } from './core/config.js';
import { loadConfig } from './core/config.js';
import type { InstrumentRegistry } from './core/instruments.js';
import { loadRegistry } from './core/instruments-file.js';
import { createLogger } from './core/logger.js';
import type { Logger } from './core/logger.js';
import { createFeed } from '../feeds/registry.js';
import { MarketChannelResolver } from './gateway/channels.js';
import type { ChannelResolver } from './gateway/channels.js';
import { Gateway } from './gateway/server.js';
import { FeedHost } from './ingest/feed-host.js';
import { TickPublisher } from './ingest/tick-publisher.js';
import type { LastValueStore } from './store/last-value-store.js';
import { MemoryLastValueStore } from './store/last-value-store.js';

export interface EngineRoles {
  /** run the WebSocket gateway in this process */
  gateway: boolean;
  /** feeds (adapter ids) to run in this process */
  feeds: readonly string[];
}

export interface EngineOptions {
  /** defaults to gateway + config.feeds (the embedded default) */
  roles?: Partial<EngineRoles>;
  env?: NodeJS.ProcessEnv;
  argv?: readonly string[];
  log?: Logger;
}

export interface Engine {
  readonly config: Readonly<Config>;
  readonly registry: InstrumentRegistry;
  readonly bus: Bus;
  readonly log: Logger;
  readonly gateway: Gateway | undefined;
  readonly publisher: TickPublisher | undefined;
  readonly feeds: FeedHost | undefined;
  /** bound gateway port (0 when no gateway runs here) */
  readonly port: number;
  readonly mode: 'embedded' | 'nats';
  close(): Promise<void>;
}

/** Private channels need a token; with auth off they are refused clearly. */
const privateChannelGuard: ChannelResolver = {
  resolve(name, principal) {
    if (name !== 'portfolio' && name !== 'executions') return undefined;
    if (principal.user === undefined) {
      return { ok: false, code: 'UNAUTHENTICATED', reason: `"${name}" is a private channel: connect with a token (auth is off or no token was sent)` };
    }
    return undefined;
  },
};

/**
 * Start tickwire in this process. With no NATS URL everything runs embedded (in-process bus,
 * memory last values, synthetic feeds, gateway); with one, each role can run on its own.
 */
export async function startEngine(overrides: ConfigInput | Record<string, unknown> = {}, options: EngineOptions = {}): Promise<Engine> {
  const config = loadConfig({ env: options.env ?? process.env, argv: options.argv ?? [], overrides });
  const log = options.log ?? createLogger(config.log);
  const registry = loadRegistry(config.instrumentsFile);
  const roles: EngineRoles = { gateway: options.roles?.gateway ?? true, feeds: options.roles?.feeds ?? config.feeds };
  const mode = config.natsUrl ? 'nats' : 'embedded';

  const bus: Bus = config.natsUrl
    ? await NatsBus.connect({
        servers: config.natsUrl,
        name: roles.gateway ? 'tickwire-gateway' : `tickwire-feed-${roles.feeds.join('+')}`,
        onStatus: (state, detail) => log.info({ state, detail }, 'nats connection'),
      })
    : new MemoryBus();

  // embedded: the publisher and the gateway share the last values in memory
  const store: LastValueStore | undefined = mode === 'embedded' ? new MemoryLastValueStore() : undefined;

  let publisher: TickPublisher | undefined;
  let feeds: FeedHost | undefined;
  let gateway: Gateway | undefined;
  const cleanup = async (): Promise<void> => {
    gateway?.close(1001, 'server shutting down');
    await feeds?.stopAll();
    publisher?.close();
    await bus.close();
    await store?.close();
  };

  try {
    if (roles.gateway) {
      gateway = new Gateway({
        config,
        bus,
        ...(store ? { store } : {}),
        resolvers: [new MarketChannelResolver(registry), privateChannelGuard],
        log,
        health: () => ({ mode, bus: bus.connected ? 'connected' : 'disconnected', feeds: feeds?.health() ?? [] }),
      });
      await gateway.listen(config.host, config.port);
      log.info({ host: config.host, port: gateway.port, mode }, `tickwire gateway listening on ws://${config.host}:${gateway.port}/v1/stream`);
    }
    if (roles.feeds.length > 0) {
      publisher = new TickPublisher({ bus, registry, ...(store ? { lastValues: store } : {}) });
      feeds = new FeedHost(publisher, log);
      for (const name of roles.feeds) {
        const adapter = createFeed(name, { config, registry });
        await feeds.start(adapter);
      }
    }
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }

  let closing: Promise<void> | undefined;
  return {
    config, registry, bus, log, gateway, publisher, feeds, mode,
    port: gateway?.port ?? 0,
    close: () => (closing ??= cleanup()),
  };
}
