import type { FeedAdapter, FeedContext } from './adapter.js';
import { StreamRunner } from './runner.js';
import type { StreamProtocol, StreamRunnerOptions, StreamSession } from './runner.js';

/**
 * Base class for adapters that stream from one connection: it is both the FeedAdapter the engine
 * runs and the StreamProtocol the runner drives. A subclass writes `url`, `onOpen`, `onMessage`
 * (and optionally live `onSubscribe`/`onUnsubscribe`); the runner does the rest.
 */
export abstract class StreamFeed implements FeedAdapter, StreamProtocol {
  readonly id: string;
  protected readonly runner: StreamRunner;
  protected ctx: FeedContext | undefined;
  readonly #initial: readonly string[];

  constructor(id: string, symbols: readonly string[], runnerOptions: StreamRunnerOptions) {
    this.id = id;
    this.#initial = symbols;
    this.runner = new StreamRunner(this, runnerOptions);
  }

  abstract url(symbols: readonly string[]): string;
  abstract onOpen(session: StreamSession, symbols: readonly string[]): void;
  abstract onMessage(data: Buffer, isBinary: boolean, session: StreamSession): void;

  async start(ctx: FeedContext): Promise<void> {
    this.ctx = ctx;
    await this.runner.start(ctx, this.#initial);
  }

  async subscribe(symbols: readonly string[]): Promise<void> {
    this.runner.subscribe(symbols);
  }

  async unsubscribe(symbols: readonly string[]): Promise<void> {
    this.runner.unsubscribe(symbols);
  }

  async stop(): Promise<void> {
    await this.runner.stop();
  }

  /**
   * The runner hands symbol changes to `onSubscribe`/`onUnsubscribe` only once the connection is
   * ready. An adapter that subscribes with a request the provider answers calls this with the
   * symbols that request named (`opening`) once it is answered: the changes made meanwhile are sent.
   */
  protected reconcileSymbols(opening: readonly string[], session: StreamSession): void {
    const now = this.runner.symbols;
    const added = now.filter((s) => !opening.includes(s));
    const removed = opening.filter((s) => !now.includes(s));
    const live = this as Partial<Pick<StreamProtocol, 'onSubscribe' | 'onUnsubscribe'>>;
    if (added.length > 0) live.onSubscribe?.(added, session);
    if (removed.length > 0) live.onUnsubscribe?.(removed, session);
  }
}

/**
 * Handle each message of a provider frame on its own: one that cannot be normalized (a malformed
 * price, an unreadable time) is counted as an error and logged, and the messages after it in the
 * same frame are still handled. Providers that batch data points into one array (Alpaca,
 * Polygon) would otherwise lose a whole batch to one bad item.
 */
export function forEachMessage<T>(messages: readonly T[], session: StreamSession, handle: (m: T) => void): void {
  for (const m of messages) {
    try {
      handle(m);
    } catch (err) {
      const detail = `bad message: ${(err as Error).message}`;
      session.ctx.metrics?.error(detail);
      session.ctx.log.warn({ err: (err as Error).message, sample: JSON.stringify(m, bigintSafe)?.slice(0, 200) }, 'feed: message could not be normalized');
    }
  }
}

function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}
