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
}
