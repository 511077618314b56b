import type { FeedAdapter, FeedContext, FeedLogger, FeedState } from '../../feeds/sdk/adapter.js';
import type { TickPublisher } from './tick-publisher.js';

export interface FeedHealth {
  id: string;
  state: FeedState;
  detail?: string;
  messages: number;
  lastMessageAt?: number;
  startedAt: number;
}

/**
 * Runs adapters in this process and routes their ticks into the publisher. Tracks a minimal
 * health record per feed (state, message count, last message time).
 */
export class FeedHost {
  readonly #publisher: TickPublisher;
  readonly #log: FeedLogger;
  readonly #feeds = new Map<string, { adapter: FeedAdapter; abort: AbortController; health: FeedHealth }>();

  constructor(publisher: TickPublisher, log: FeedLogger) {
    this.#publisher = publisher;
    this.#log = log;
  }

  async start(adapter: FeedAdapter): Promise<void> {
    const abort = new AbortController();
    const health: FeedHealth = { id: adapter.id, state: 'starting', messages: 0, startedAt: Date.now() };
    this.#feeds.set(adapter.id, { adapter, abort, health });
    const publisher = this.#publisher;
    const log = this.#log;
    const ctx: FeedContext = {
      emit(tick) {
        health.messages++;
        health.lastMessageAt = Date.now();
        publisher.publish(adapter.id, tick);
      },
      status(state, detail) {
        health.state = state;
        if (detail === undefined) delete health.detail;
        else health.detail = detail;
        log.info({ feed: adapter.id, state, detail }, 'feed state');
      },
      signal: abort.signal,
      log,
    };
    await adapter.start(ctx);
  }

  health(): FeedHealth[] {
    return [...this.#feeds.values()].map((f) => ({ ...f.health }));
  }

  async stopAll(): Promise<void> {
    const all = [...this.#feeds.values()];
    this.#feeds.clear();
    await Promise.allSettled(
      all.map(async (f) => {
        f.abort.abort();
        await f.adapter.stop();
      }),
    );
  }
}
