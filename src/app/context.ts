import type { FeedsFile } from '../../feeds/config.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { Logger } from '../core/logger.js';
import type { Lifecycle } from './lifecycle.js';

export interface EngineRoles {
  /** run the WebSocket gateway in this process */
  gateway: boolean;
  /** feeds (adapter ids) to run in this process */
  feeds: readonly string[];
  /** run the portfolio valuation service here (default: yes when embedded with a gateway) */
  portfolio: boolean;
}

/** What every builder gets: the loaded configuration and the process's lifecycle. */
export interface EngineContext {
  readonly config: Readonly<Config>;
  readonly registry: InstrumentRegistry;
  readonly log: Logger;
  readonly env: NodeJS.ProcessEnv;
  readonly roles: EngineRoles;
  readonly mode: 'embedded' | 'nats';
  readonly feedsFile: FeedsFile | undefined;
  /** components register their shutdown here as they start */
  readonly lifecycle: Lifecycle;
}
