/**
 * One gateway worker thread (started by supervisor.ts): a whole gateway (uWS event loop, hub,
 * connections, limits, private channels) on the port it shares with the other workers through
 * SO_REUSEPORT. In NATS mode it has its own bus (and Redis) connections, like a gateway process;
 * in embedded mode its bus, last values, execution and notifications logs, portfolio and alert
 * services are the main thread's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { startEngine } from '../app/engine.js';
import type { Engine, GatewayWorkerHooks } from '../app/engine.js';
import { loadConfig } from '../core/config.js';
import { ConfigError, TickwireError } from '../core/errors.js';
import { extractFeedsFileFlag } from '../../feeds/config.js';
import { createLogger } from '../core/logger.js';
import { freshFlight } from '../core/fresh-flight.js';
import { SharedConnectionCounts, SharedIpBuckets } from '../gateway/connection-counts.js';
import { SharedBudgetLedger } from '../executions/replay-budget.js';
import type { ReplayBudgetOptions } from '../executions/replay-budget.js';
import { RENDER_MIN_GAP_MS } from '../ops/metrics.js';
import type { EngineMetrics } from '../ops/metrics.js';
import type { Gather, ToMain, ToWorker, WorkerInit } from './messages.js';
import { WorkerBus } from './port-bus.js';
import { RemoteAlerts, RemoteBarStore, RemoteCalls, RemoteEventLog, RemotePortfolio, RemoteStore } from './remote.js';
import type { NotificationEvent } from '../notifications/schemas.js';
import { HELD_STRIDE, heldOf } from './held.js';
import { STATS_EVERY_MS, StatsBoard } from './stats-board.js';
import { sumStats } from './aggregate.js';
import type { GatewayStats } from '../gateway/server.js';
import type { ConnectionQuery } from '../admin/admin.js';

const init = workerData as WorkerInit;
const port = parentPort as MessagePort;
const post = (m: ToMain): void => port.postMessage(m);

const config = loadConfig({ argv: extractFeedsFileFlag(init.argv).rest, overrides: { ...init.overrides, port: init.port } });
const log = createLogger(config.log).child({ worker: init.index });
const held = new Int32Array(init.held);
const board = new StatsBoard(init.board);
const calls = new RemoteCalls(port);
const bus = init.embedded ? new WorkerBus(port) : undefined;
const events = init.embedded ? new RemoteEventLog('memory', calls, port) : undefined;
// the main thread's notifications log and alert service (embedded, when it runs them): firings reach every worker
let notifications: RemoteEventLog<NotificationEvent> | undefined;
/** the main thread's `begin`: its engine is up (this thread loaded its modules meanwhile) */
let began: (m: Extract<ToWorker, { t: 'begin' }>) => void = () => undefined;
const begin = new Promise<Extract<ToWorker, { t: 'begin' }>>((resolve) => (began = resolve));
let engine: Engine | undefined;
/** the engine's start, while it runs: a stop waits for it (its sockets must be closed before the thread ends) */
let starting: Promise<unknown> | undefined;
let stopping: Promise<void> | undefined;

/** GET /v1/stats and /metrics: the main thread gathers every worker's figures and sums them. */
const gathering = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
let nextGather = 1;
function gather<T>(what: Gather, arg?: string, data?: Uint8Array): Promise<T> {
  const id = nextGather++;
  return new Promise<T>((resolve, reject) => {
    gathering.set(id, { resolve: resolve as (v: unknown) => void, reject });
    post({ t: 'gather', id, what, ...(arg !== undefined ? { arg } : {}), ...(data !== undefined ? { data } : {}) });
  });
}

const hooksFor = (main: Extract<ToWorker, { t: 'begin' }>): GatewayWorkerHooks => ({
  ...(bus ? { bus } : {}),
  ...(init.embedded && main.hasStore ? { store: new RemoteStore(calls) } : {}),
  ...(init.embedded && main.hasBars ? { bars: new RemoteBarStore(calls) } : {}),
  ...(events ? { events } : {}),
  ...(init.embedded && main.hasPortfolio ? { portfolioApi: new RemotePortfolio(calls) } : {}),
  ...(notifications ? { notifications, alerts: new RemoteAlerts(calls) } : {}),
  limits: {
    counts: new SharedConnectionCounts(init.counts, init.workers, init.index),
    ipBuckets: new SharedIpBuckets(init.ipBuckets, init.index, init.epoch),
    httpIpBuckets: new SharedIpBuckets(init.httpIpBuckets, init.index, init.epoch),
    frameIpBuckets: new SharedIpBuckets(init.frameIpBuckets, init.index, init.epoch),
  },
  budgets: {
    barReads: (o: ReplayBudgetOptions) => new SharedBudgetLedger(init.budgets.barReads, o, init.index, init.epoch),
    executionReplays: (o: ReplayBudgetOptions) => new SharedBudgetLedger(init.budgets.executionReplays, o, init.index, init.epoch),
    notificationReplays: (o: ReplayBudgetOptions) => new SharedBudgetLedger(init.budgets.notificationReplays, o, init.index, init.epoch),
  },
  peers: {
    held: () => {
      let n = 0;
      for (let w = 0; w < init.workers; w++) if (w !== init.index) n += Atomics.load(held, w * HELD_STRIDE) + Atomics.load(held, w * HELD_STRIDE + 1);
      return n;
    },
    report: (open, verifying) => {
      Atomics.store(held, init.index * HELD_STRIDE, open);
      Atomics.store(held, init.index * HELD_STRIDE + 1, verifying);
    },
  },
  // the other workers' figures from the board (at most STATS_EVERY_MS old); the main thread only
  // when some worker's figures did not fit there
  stats: async (local) => {
    // this worker's figures go on the board before it reads the others': whichever worker answers
    // next reads them there, so no later answer counts less than this one (a counter that went
    // backwards between two answers from different workers would read as a reset)
    board.write(init.index, local);
    const parts: GatewayStats[] = [];
    for (let w = 0; w < init.workers; w++) {
      if (w === init.index) {
        parts.push(local);
        continue;
      }
      if (Atomics.load(held, w * HELD_STRIDE + 2) === 0) continue;
      const v = board.read(w);
      if (v === 'too-big') return gather('stats');
      // open connections are counted live in shared memory: exact, whatever the board's age
      if (v !== undefined) parts.push({ ...(v as GatewayStats), connections: Atomics.load(held, w * HELD_STRIDE) });
    }
    return { ...sumStats(parts), workersConfigured: init.workers, workersAnswered: parts.length };
  },
  admin: { gather: (q) => gather('admin', JSON.stringify(q)), close: (id) => gather('close', id) },
  forwardHttpStream: (session, body) => gather<boolean>('post', session, body),
  health: (local) => {
    const h = heldOf(held, init.workers);
    return { ...local, connections: h.open, workers: { configured: init.workers, running: h.running, this: init.index } };
  },
  metrics: (local: EngineMetrics): EngineMetrics => ({
    registry: local.registry,
    sources: local.sources,
    contentType: local.contentType,
    // a gather from every worker and a merge on the main thread: shared by concurrent scrapes
    render: freshFlight(() => gather<string>('metrics'), RENDER_MIN_GAP_MS),
  }),
});

async function answer(id: number, what: Gather, arg?: string, data?: Uint8Array): Promise<void> {
  let value: unknown;
  try {
    if (what === 'post') value = arg !== undefined && data !== undefined && engine?.gateway?.deliverHttpStream(arg, data) === true;
    else if (what === 'stats') value = engine?.gateway?.stats();
    else if (what === 'admin') value = arg !== undefined ? engine?.admin?.snapshot(JSON.parse(arg) as ConnectionQuery) : undefined;
    else if (what === 'close') value = arg !== undefined && engine?.admin?.close(arg) === true;
    else value = await engine?.metrics?.registry.getMetricsAsJSON();
  } catch (err) {
    log.warn({ err }, `collecting ${what} failed`);
  }
  post({ t: 'local', id, value });
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'msgs':
      bus?.deliver(m.items);
      return;
    case 'result':
      calls.settle(m);
      return;
    case 'event':
      (m.log === 'notifications' ? notifications : events)?.emit(m.user, m.ev as never, m.position);
      return;
    case 'collect':
      void answer(m.id, m.what, m.arg, m.data);
      return;
    case 'gathered': {
      const g = gathering.get(m.id);
      gathering.delete(m.id);
      if (m.ok) g?.resolve(m.value);
      else g?.reject(new Error(m.error));
      return;
    }
    case 'begin':
      began(m);
      return;
    case 'stop':
      void stop(0);
      return;
  }
});

/**
 * End this worker: close the gateway (clients get 1001), the bus and stores, then every socket
 * still open, and let the thread's event loop run out. A uWS worker thread must not be ended with
 * sockets open (Node aborts the whole process), so this never calls process.exit.
 */
function stop(code: number): Promise<void> {
  return (stopping ??= (async () => {
    process.exitCode = code;
    await starting?.catch(() => undefined);
    try {
      await Promise.race([engine?.close(), new Promise((r) => setTimeout(r, config.shutdownTimeoutMs).unref())]);
    } catch (err) {
      log.warn({ err }, 'worker close failed');
    }
    // the engine closed its gateway, unless it did not get that far in time: close ends every
    // socket left (HTTP keep-alive connections, clients that did not answer the close frame)
    await engine?.gateway?.close();
    calls.failAll('the gateway worker is stopping');
    for (const g of gathering.values()) g.reject(new Error('the gateway worker is stopping'));
    gathering.clear();
    await bus?.close();
    post({ t: 'stopped' });
    port.close();
  })());
}

/** A crash is reported to the supervisor (which restarts the worker or stops the process). */
function crashed(err: unknown): void {
  // a worker that fails to start with a TickwireError (bus unreachable, port in use, bad
  // configuration) is reported by the main thread in one line (the supervisor rejects with it):
  // no stack trace for a reason the operator must act on. Anything else is logged in full.
  const expected = engine === undefined && err instanceof TickwireError;
  if (!expected) log.error({ err }, 'gateway worker crashed');
  if (err instanceof ConfigError) post({ t: 'crash', error: err.message, config: true });
  else if (expected) post({ t: 'crash', error: err.message });
  else post({ t: 'crash', error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
  void stop(1);
}
process.on('uncaughtException', crashed);
process.on('unhandledRejection', crashed);

try {
  const main = await begin;
  if (init.embedded && main.hasAlerts) notifications = new RemoteEventLog<NotificationEvent>('memory', calls, port, 'notifications');
  const start = startEngine(
    { ...init.overrides, port: init.port },
    { roles: { gateway: true, feeds: [], portfolio: false, alerts: false }, argv: init.argv, log, worker: hooksFor(main) },
  );
  starting = start;
  engine = await start;
  starting = undefined;
  if (stopping) await engine.close();
  else {
    const gw = engine.gateway;
    if (gw) {
      board.write(init.index, gw.stats());
      setInterval(() => board.write(init.index, gw.stats()), STATS_EVERY_MS).unref();
    }
    post({ t: 'ready', port: engine.port });
  }
} catch (err) {
  starting = undefined;
  crashed(err);
}
