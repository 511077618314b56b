import type { Config } from '../src/core/config.js';
import type { InstrumentRegistry } from '../src/core/instruments.js';
import { ConfigError } from '../src/core/errors.js';
import type { FeedAdapter } from './sdk/adapter.js';
import { SyntheticFeed } from './synthetic/synthetic-feed.js';

export interface FeedFactoryContext {
  config: Readonly<Config>;
  registry: InstrumentRegistry;
}
export type FeedFactory = (ctx: FeedFactoryContext) => FeedAdapter;

/** Adapters known to `tickwire feed <name>` and the embedded engine, by provider id. */
export const FEED_FACTORIES: Record<string, FeedFactory> = {
  synthetic: ({ config, registry }) => {
    const wanted = config.synthetic.symbols;
    const instruments = wanted
      ? wanted.map((s) => {
          const i = registry.get(s);
          if (!i) throw new ConfigError(`synthetic.symbols: "${s}" is not a known instrument: add it to the instruments file or remove it`);
          return i;
        })
      : registry.all().filter((i) => i.providers.includes('synthetic'));
    return new SyntheticFeed({ instruments, seed: config.synthetic.seed, rate: config.synthetic.rate });
  },
};

export function createFeed(name: string, ctx: FeedFactoryContext): FeedAdapter {
  const factory = FEED_FACTORIES[name];
  if (!factory) {
    throw new ConfigError(`unknown feed "${name}" (feeds / tickwire feed <name>): known feeds are ${Object.keys(FEED_FACTORIES).join(', ')}`);
  }
  return factory(ctx);
}
