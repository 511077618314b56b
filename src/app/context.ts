import type { FeedsFile } from '../../feeds/config.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { Logger } from '../core/logger.js';
import type { Lifecycle } from './lifecycle.js';
import type { AdminPeers } from '../admin/admin.js';
import type { Bus } from '../bus/bus.js';
import type { EventLog } from '../executions/event-log.js';
import type { AlertsApi } from '../alerts/alert-api.js';
import type { NotificationEvent } from '../notifications/schemas.js';
import type { SharedLimits } from '../gateway/limits.js';
import type { BudgetLedger, ReplayBudgetOptions, SharedBudgetName } from '../executions/replay-budget.js';
import type { GatewayOptions } from '../gateway/server.js';
import type { EngineMetrics } from '../ops/metrics.js';
import type { PortfolioApi } from '../portfolio/portfolio-api.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { BarStore } from '../history/bar-store.js';

/** How a gateway worker thread (src/workers) plugs into the engine: the parts shared with the other workers. */
export interface GatewayWorkerHooks {
  /**
   * embedded mode: the main thread's in-process bus, last values, execution log, portfolio
   * service, notifications log and alert service
   */
  bus?: Bus;
  store?: LastValueStore;
  /** embedded mode: the main thread's bar store, which its feeds write */
  bars?: BarStore;
  events?: EventLog;
  portfolioApi?: PortfolioApi;
  notifications?: EventLog<NotificationEvent>;
  alerts?: AlertsApi;
  /** per-user connection counts and per-IP buckets across the workers */
  limits: SharedLimits;
  /** the process's bar-read and replay budgets, one ledger each, with the rates this gateway configures */
  budgets?: Record<SharedBudgetName, (opts: ReplayBudgetOptions) => BudgetLedger>;
  peers: NonNullable<GatewayOptions['peers']>;
  /** the HTTP stream's POSTs whose session another worker holds */
  forwardHttpStream?: GatewayOptions['forwardHttpStream'];
  stats: NonNullable<GatewayOptions['stats']>;
  /** /admin: the lists of every worker, and a close that reaches the worker holding the connection */
  admin?: AdminPeers;
  /** /health: this worker's answer, completed with the figures of every worker */
  health: (local: Record<string, unknown>) => Record<string, unknown>;
  /** /metrics: summed over the workers */
  metrics: (local: EngineMetrics) => EngineMetrics;
}

export interface EngineRoles {
  /** run the WebSocket gateway in this process */
  gateway: boolean;
  /** feeds (adapter ids) to run in this process */
  feeds: readonly string[];
  /** run the portfolio valuation service here (default: yes when embedded with a gateway) */
  portfolio: boolean;
  /** evaluate alert rules here (default: yes when embedded with a gateway; `tickwire alerts` in NATS mode) */
  alerts: boolean;
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
  /** set in a gateway worker thread: the parts shared with the other workers */
  readonly worker: GatewayWorkerHooks | undefined;
}
