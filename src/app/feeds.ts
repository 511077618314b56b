import { createFeed, feedType } from '../../feeds/registry.js';
import type { Bus } from '../bus/bus.js';
import { createFailover } from '../ingest/failover.js';
import type { FailoverSelector } from '../ingest/failover.js';
import { FeedHost } from '../ingest/feed-host.js';
import { TickPublisher } from '../ingest/tick-publisher.js';
import type { ClosedBarSink } from '../ingest/tick-publisher.js';
import type { BusTap } from '../ops/bus-tap.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { EngineContext } from './context.js';

export interface FeedsParts {
  readonly publisher: TickPublisher;
  readonly host: FeedHost;
  /** per-symbol failover between the feeds running here, when the feeds file asks for it */
  readonly failover: FailoverSelector | undefined;
}

/** The feeds of this process (`roles.feeds`), publishing through one TickPublisher. */
export async function buildFeeds(ctx: EngineContext, bus: Bus, busTap: BusTap, store: LastValueStore | undefined, bars?: ClosedBarSink): Promise<FeedsParts> {
  const { config, registry, log, lifecycle, roles, feedsFile } = ctx;
  const publisher = new TickPublisher({ bus: busTap, registry, books: config.book, ...(store ? { lastValues: store } : {}), ...(bars ? { bars } : {}) });
  lifecycle.add('tick publisher', () => publisher.close());
  // a restarted feed process goes on with the day's ticker and the open bars it left (docs/protocol.md#bar-bar1s-bar1m-bar5m-bar1h-bar1d)
  await publisher.restore({ statusFeeds: roles.feeds }).then(
    (n) => n > 0 && log.info({ values: n }, 'ticker days, bars and trading statuses taken up from the last-value store'),
    (err: unknown) => log.warn({ err }, 'could not read the last-value store: ticker days, bars and trading statuses start afresh'),
  );
  const failover = createFailover(feedsFile, roles.feeds, publisher, log);
  if (failover) lifecycle.add('failover', () => failover.stop());
  const host = new FeedHost(publisher, log, { bus, ...(failover ? { failover } : {}) });
  lifecycle.add('feeds', () => host.stopAll());
  for (const name of roles.feeds) {
    const adapter = createFeed(name, { config, registry, env: ctx.env, ...(feedsFile ? { feedsFile } : {}) });
    await host.start(adapter, feedType(name, feedsFile));
    log.info({ feed: name }, 'feed started');
  }
  return { publisher, host, failover };
}
