/**
 * Messages between the gateway supervisor (main thread) and its gateway worker threads, over
 * each worker's `parentPort`. Structured clone copies them; bus payloads are small (one tick).
 */

import type { SharedBudgetName } from '../executions/replay-budget.js';

/** What a worker asks of the main thread's shared parts (embedded mode) by name. */
export type RemoteTarget = 'store' | 'bars' | 'events' | 'notifications' | 'portfolio' | 'alerts';

/** The main thread's logs a worker follows: executions, notifications. */
export type RemoteLog = 'events' | 'notifications';

export type ToMain =
  | { t: 'ready'; port: number }
  | { t: 'sub'; id: number; pattern: string }
  | { t: 'unsub'; id: number }
  | { t: 'pub'; subject: string; payload: Uint8Array }
  | { t: 'call'; id: number; target: RemoteTarget; method: string; args: unknown[] }
  | { t: 'follow'; log: RemoteLog }
  | { t: 'unfollow'; log: RemoteLog }
  /** a request for the figures of every worker (GET /v1/stats, GET /metrics) */
  | { t: 'gather'; id: number; what: Gather; arg?: string; data?: Uint8Array }
  /** this worker's own figures, answering `collect` */
  | { t: 'local'; id: number; value: unknown }
  /** `config`: a configuration error (the process exits 2 with it, as a single gateway does) */
  | { t: 'crash'; error: string; config?: boolean }
  | { t: 'stopped' };

/**
 * `admin`: the console's lists; `close`: close connection `arg` wherever it is (src/admin);
 * `post`: a POST body (`data`) of the HTTP-streaming fallback for session `arg`, to the worker
 * that holds the session (src/gateway/http-stream.ts)
 */
export type Gather = 'stats' | 'metrics' | 'admin' | 'close' | 'post';

export type ToWorker =
  /** bus messages of this turn: [subscription id, subject, payload] */
  | { t: 'msgs'; items: [number, string, Uint8Array][] }
  | { t: 'result'; id: number; ok: true; value: unknown }
  | { t: 'result'; id: number; ok: false; error: RemoteError }
  | { t: 'event'; log: RemoteLog; user: string; ev: unknown; position: number }
  | { t: 'collect'; id: number; what: Gather; arg?: string; data?: Uint8Array }
  | { t: 'gathered'; id: number; ok: true; value: unknown }
  | { t: 'gathered'; id: number; ok: false; error: string }
  | { t: 'stop' }
  /**
   * the main thread's engine is up: start the gateway (a worker loads its modules meanwhile).
   * Embedded: which of the main thread's parts there are (last values kept in this process,
   * the portfolio service, the alert service and the notifications log)
   */
  | { t: 'begin'; hasStore: boolean; hasBars: boolean; hasPortfolio: boolean; hasAlerts: boolean };

/** An error thrown on the main thread, as the worker rebuilds it (the service API maps `status` and `code`). */
export interface RemoteError {
  name: string;
  message: string;
  code?: string;
  status?: number;
  field?: string;
}

/** What the supervisor hands each worker at start (workerData). */
export interface WorkerInit {
  index: number;
  workers: number;
  /** the port to bind; 0 for the first worker when the configured port is 0 */
  port: number;
  argv: string[];
  /** config overrides (tests) */
  overrides: Record<string, unknown>;
  /** SharedConnectionCounts buffer */
  counts: SharedArrayBuffer;
  /** SharedIpBuckets buffers (new connections, costly HTTP requests), and the time origin of their refill times */
  ipBuckets: SharedArrayBuffer;
  httpIpBuckets: SharedArrayBuffer;
  /** SharedIpBuckets buffer of client frames per address (limits.messagesPerIpPerSec) */
  frameIpBuckets: SharedArrayBuffer;
  /** SharedBudgetLedger buffers: bar reads, executions replays, notifications replays (refill times from `epoch`) */
  budgets: Record<SharedBudgetName, SharedArrayBuffer>;
  epoch: number;
  /** StatsBoard buffer: each worker's /v1/stats figures */
  board: SharedArrayBuffer;
  /** Int32 per worker: [open, verifying] (the connection ceiling counts across workers) */
  held: SharedArrayBuffer;
  /** embedded mode: the bus, last values, logs and services come from the main thread (see `begin`) */
  embedded: boolean;
}
