import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { startEngine } from '../app/engine.js';
import type { Engine } from '../app/engine.js';
import { extractFeedsFileFlag } from '../../feeds/config.js';
import type { Config } from '../core/config.js';
import { loadConfig } from '../core/config.js';
import { ConfigError, TickwireError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import type { Logger } from '../core/logger.js';
import { SharedConnectionCounts, SharedIpBuckets } from '../gateway/connection-counts.js';
import type { GatewayStats } from '../gateway/server.js';
import { defaultMaxConnections } from '../gateway/limits.js';
import { SHARED_BUDGETS, SharedBudgetLedger } from '../executions/replay-budget.js';
import type { SharedBudgetName } from '../executions/replay-budget.js';
import { sumMetrics, sumStats } from './aggregate.js';
import { allocateHeld, setRunning } from './held.js';
import { allocateBoard, StatsBoard } from './stats-board.js';
import type { Gather, ToMain, ToWorker, WorkerInit } from './messages.js';
import { BusBridge } from './port-bus.js';
import { RemoteServer } from './remote.js';
import { mergeSnapshots } from '../admin/admin.js';
import type { ConnectionQuery, WorkerSnapshot } from '../admin/admin.js';
import { answeredHosts } from '../core/hosts.js';

/** A worker that crashes more often than this within CRASH_WINDOW_MS stops the process (exit 1). */
export const MAX_RESTARTS = 3;
export const CRASH_WINDOW_MS = 60_000;
/** Addresses with a per-IP bucket at once (full buckets are swept every 30 s; beyond this, new addresses pass). */
const MAX_IP_BUCKETS = 100_000;
/** How long a worker gets to answer for /v1/stats and /metrics. */
const GATHER_TIMEOUT_MS = 2000;

export interface GatewayWorkersOptions {
  /** feeds to run on the main thread (`tickwire start`); none for `tickwire gateway` */
  feeds?: readonly string[];
  /** command-line flags (config keys, --feeds-file) */
  argv?: readonly string[];
  log?: Logger;
  /** called when the workers cannot be kept running (crashes beyond MAX_RESTARTS); default: log and exit 1 */
  onFatal?: (err: Error) => void;
  /** the worker module (tests: one that wraps gateway-worker to inject faults) */
  entry?: URL;
  /** config overrides on top of env and flags (tests), for the main thread and every worker */
  overrides?: Record<string, unknown>;
  /**
   * Called at once with a function that stops the start-up (a signal before every worker is
   * ready): workers already starting stop as soon as they can, and the start rejects.
   */
  onStarting?: (requestStop: () => void) => void;
}

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

interface Slot {
  index: number;
  worker: Worker;
  bridge: BusBridge | undefined;
  remote: RemoteServer | undefined;
  ready: boolean;
  stopping: boolean;
  /** answers of a gather, by the supervisor's request id */
  crashError: string | undefined;
  /** the worker refused its configuration (ConfigError): start-up fails with it */
  configError: boolean;
}

/** The gateway workers of a process and how to stop them (what the CLI's signal handler needs). */
export interface GatewayWorkers {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  readonly port: number;
  readonly workers: number;
  /** the main thread's engine (feeds, in-process bus, execution log, portfolio), if it runs one */
  readonly main: Engine | undefined;
  /** workers restarted after a crash since start */
  readonly restarts: number;
  close(): Promise<void>;
}

/** `gateway.workers` (`--workers N`); unset or 0: one per core (`os.availableParallelism()`). */
export function workerCount(config: Readonly<Config>): number {
  const n = config.gateway.workers;
  return n === undefined || n === 0 ? availableParallelism() : n;
}

/**
 * Serve the gateway port from N uWS event loops: N worker threads (gateway-worker.ts), each a
 * whole gateway, that bind the same port with SO_REUSEPORT so that the kernel spreads new
 * connections over them. The main thread keeps what must be one per process:
 *
 * - NATS mode: each worker connects to NATS (and Redis) by itself, like a gateway process; the
 *   main thread runs the feeds of `tickwire start`, if any.
 * - embedded mode: the main thread runs the feeds, the in-process bus, the last values, the
 *   execution log and the portfolio service; workers reach them through their port (BusBridge,
 *   RemoteServer).
 * - per-user connection counts and the connection ceiling live in SharedArrayBuffers that every
 *   worker updates atomically; /v1/stats and /metrics are gathered from every worker and summed.
 * - a worker that crashes is restarted (its clients reconnect); more than MAX_RESTARTS crashes in
 *   CRASH_WINDOW_MS stop the process with exit code 1.
 */
export async function startGatewayWorkers(opts: GatewayWorkersOptions = {}): Promise<GatewayWorkers> {
  const argv = [...(opts.argv ?? [])];
  const overrides = opts.overrides ?? {};
  const config = loadConfig({ argv: extractFeedsFileFlag(argv).rest, overrides });
  const log = opts.log ?? createLogger(config.log);
  const n = workerCount(config);
  const embedded = !config.natsUrl;
  const feeds = opts.feeds;
  const runMain = embedded || feeds === undefined || feeds.length > 0;
  const slots: (Slot | undefined)[] = new Array<Slot | undefined>(n).fill(undefined);
  let stopRequested = false;
  opts.onStarting?.(() => {
    stopRequested = true;
    for (const s of slots) {
      if (s && !s.stopping) {
        s.stopping = true;
        s.worker.postMessage({ t: 'stop' } satisfies ToWorker);
      }
    }
  });

  // a port held by another process (even by uWS with SO_REUSEPORT) fails this bind: the workers
  // share the port only among themselves. Port 0: the kernel picks a free port here, and every
  // worker binds that one (uSockets does not share a port-0 bind)
  const port = await probePort(config.host, config.port);

  // the main thread's engine starts while the workers load their modules (most of a worker's
  // start-up); a worker starts its gateway once the main thread's parts exist (`begin`)
  const mainStart = runMain
    ? startEngine(overrides, { roles: { gateway: false, ...(feeds !== undefined ? { feeds } : {}), portfolio: embedded, alerts: embedded }, argv, log })
    : Promise.resolve(undefined);
  let main: Engine | undefined;
  /** set once the main thread's engine is up: workers spawned from then on begin at once */
  let mainUp = false;
  let registry: Registry | undefined;

  const maxConnections = config.gateway.maxConnections ?? defaultMaxConnections();
  // a connection is counted under its user, under its address (limits.connectionsPerIp) and,
  // while its token is verified, under its address again: at most three keys each
  const countsBuffer = SharedConnectionCounts.allocate(Math.ceil(((maxConnections * 3 + n) * 4) / 3), n);
  const counts = new SharedConnectionCounts(countsBuffer, n, -1);
  const ipBuffer = SharedIpBuckets.allocate(Math.ceil((MAX_IP_BUCKETS * 4) / 3));
  const ipBuckets = new SharedIpBuckets(ipBuffer, -1, Date.now());
  // the costly HTTP requests' buckets (limits.httpRequestsPerIpPerSec): a table of their own,
  // since a table's sweep knows one rate
  const httpIpBuffer = SharedIpBuckets.allocate(Math.ceil((MAX_IP_BUCKETS * 4) / 3));
  const httpIpBuckets = new SharedIpBuckets(httpIpBuffer, -1, Date.now());
  // client frames per address (limits.messagesPerIpPerSec)
  const frameIpBuffer = SharedIpBuckets.allocate(Math.ceil((MAX_IP_BUCKETS * 4) / 3));
  const frameIpBuckets = new SharedIpBuckets(frameIpBuffer, -1, Date.now());
  // the bar-read and replay budgets (history.readBars*, executions.replay*): the process's, not a worker's
  const budgetBuffers = Object.fromEntries(SHARED_BUDGETS.map((b) => [b, SharedBudgetLedger.allocate()])) as Record<SharedBudgetName, SharedArrayBuffer>;
  const epoch = Date.now();
  const heldBuffer = allocateHeld(n);
  const boardBuffer = allocateBoard(n);
  const board = new StatsBoard(boardBuffer);
  const held = new Int32Array(heldBuffer);
  const entry = (opts.entry ?? new URL(`./gateway-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url)).href;
  const tsxApi = entry.endsWith('.ts') ? tsxEsmApi() : '';

  const crashes: number[] = [];
  let restarts = 0;
  let closing = false;
  let gatherId = 1;
  const gathers = new Map<number, { answers: Map<number, unknown>; expect: Set<number>; done(): void }>();

  const fatal = (err: Error): void => {
    if (opts.onFatal) opts.onFatal(err);
    else {
      log.fatal({ err }, 'gateway workers cannot be kept running: stopping');
      void close().finally(() => process.exit(1));
    }
  };

  const gather = (from: Slot, id: number, what: Gather, arg?: string, data?: Uint8Array): void => {
    // a POST of the HTTP stream goes to the other workers: the one asking does not hold its session
    const live = slots.filter((s): s is Slot => s !== undefined && s.ready && !s.stopping && (what !== 'post' || s !== from));
    const reqId = gatherId++;
    const answers = new Map<number, unknown>();
    const expect = new Set(live.map((s) => s.index));
    let finished = false;
    const timer = setTimeout(() => done(), GATHER_TIMEOUT_MS);
    const done = (): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      gathers.delete(reqId);
      void (async (): Promise<ToWorker> => {
        try {
          const values = [...answers.entries()]
            .sort((a, b) => a[0] - b[0])
            .map(([, v]) => v)
            .filter((v) => v !== undefined);
          if (what === 'admin') return { t: 'gathered', id, ok: true, value: mergeSnapshots(values as WorkerSnapshot[], JSON.parse(arg!) as ConnectionQuery) };
          if (what === 'close' || what === 'post') return { t: 'gathered', id, ok: true, value: values.some((v) => v === true) };
          if (what === 'stats') {
            if (values.length === 0) throw new TickwireError('STATS', 'no gateway worker answered');
            const s = sumStats(values as GatewayStats[]);
            return { t: 'gathered', id, ok: true, value: { ...s, workersConfigured: n, workersAnswered: values.length } };
          }
          const m = await sumMetrics((await (registry ?? defaultRegistry()).getMetricsAsJSON()) as MetricJson[], values as MetricJson[][]);
          return { t: 'gathered', id, ok: true, value: m.text };
        } catch (err) {
          return { t: 'gathered', id, ok: false, error: (err as Error).message };
        }
      })().then((reply) => from.worker.postMessage(reply));
    };
    gathers.set(reqId, { answers, expect, done });
    for (const s of live)
      s.worker.postMessage({
        t: 'collect',
        id: reqId,
        what,
        ...(arg !== undefined ? { arg } : {}),
        ...(data !== undefined ? { data } : {}),
      } satisfies ToWorker);
    if (expect.size === 0) done();
  };

  const onMessage = (slot: Slot, m: ToMain, ready: (port: number) => void): void => {
    if (slot.bridge?.handle(m) || slot.remote?.handle(m)) return;
    switch (m.t) {
      case 'ready':
        slot.ready = true;
        setRunning(held, slot.index, true);
        ready(m.port);
        return;
      case 'gather':
        gather(slot, m.id, m.what, m.arg, m.data);
        return;
      case 'local': {
        const g = gathers.get(m.id);
        if (!g) return;
        g.answers.set(slot.index, m.value);
        g.expect.delete(slot.index);
        if (g.expect.size === 0) g.done();
        return;
      }
      case 'crash':
        slot.crashError = m.error;
        slot.configError = m.config === true;
        return;
      default:
        return;
    }
  };

  /** The main thread's engine is up: connect the worker to its parts and let it start its gateway. */
  const begin = (slot: Slot): void => {
    if (embedded && main) {
      slot.bridge = new BusBridge(main.bus, slot.worker);
      slot.remote = new RemoteServer(slot.worker, {
        ...(main.store ? { store: main.store } : {}),
        ...(main.bars ? { bars: main.bars } : {}),
        ...(main.private ? { events: main.private.events } : {}),
        ...(main.private?.portfolio ? { portfolio: main.private.portfolio } : {}),
        ...(main.userAlerts ? { notifications: main.userAlerts.notifications.service.log } : {}),
        ...(main.userAlerts?.alerts ? { alerts: main.userAlerts.alerts.api } : {}),
      });
    }
    slot.worker.postMessage({
      t: 'begin',
      hasStore: main?.store !== undefined && !config.redisUrl,
      hasBars: embedded && main?.bars !== undefined && !config.redisUrl,
      hasPortfolio: main?.private?.portfolio !== undefined,
      hasAlerts: embedded && main?.userAlerts !== undefined,
    } satisfies ToWorker);
  };

  const spawn = (index: number, bindPort: number): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      if (stopRequested || closing) {
        reject(new TickwireError('STOPPED', 'stopped while starting'));
        return;
      }
      const init: WorkerInit = {
        index,
        workers: n,
        port: bindPort,
        argv,
        overrides,
        counts: countsBuffer,
        ipBuckets: ipBuffer,
        httpIpBuckets: httpIpBuffer,
        frameIpBuckets: frameIpBuffer,
        budgets: budgetBuffers,
        epoch,
        board: boardBuffer,
        held: heldBuffer,
        embedded,
      };
      const worker = entry.endsWith('.ts')
        ? // from source (tsx): a worker thread's entry module is loaded before the --import hooks
          // of execArgv apply, so the entry registers tsx itself before importing the .ts file
          new Worker(
            `import(${JSON.stringify(tsxApi)}).then((api) => { (api.register ?? api.default.register)(); return import(${JSON.stringify(entry)}); })`,
            { eval: true, workerData: init, name: `tickwire-gateway-${index}` },
          )
        : new Worker(new URL(entry), { workerData: init, name: `tickwire-gateway-${index}` });
      const slot: Slot = { index, worker, bridge: undefined, remote: undefined, ready: false, stopping: false, crashError: undefined, configError: false };
      slots[index] = slot;
      if (mainUp) begin(slot);
      let started = false;
      worker.on('message', (m: ToMain) =>
        onMessage(slot, m, (p) => {
          started = true;
          resolve(p);
        }),
      );
      worker.on('error', (err) => {
        slot.crashError ??= `${err.name}: ${err.message}`;
      });
      worker.on('exit', (code) => {
        slot.bridge?.close();
        slot.remote?.close();
        counts.clearWorker(index);
        ipBuckets.breakLock(index);
        httpIpBuckets.breakLock(index);
        frameIpBuckets.breakLock(index);
        for (const b of SHARED_BUDGETS) SharedBudgetLedger.breakLock(budgetBuffers[b], index);
        board.clear(index);
        setRunning(held, index, false);
        for (const g of gathers.values()) {
          g.expect.delete(index);
          if (g.expect.size === 0) g.done();
        }
        if (slots[index] === slot) slots[index] = undefined;
        if (!started) {
          if (slot.configError && slot.crashError !== undefined) {
            reject(new ConfigError(slot.crashError));
            return;
          }
          reject(new TickwireError('WORKER', `gateway worker ${index} did not start (exit ${code}): ${slot.crashError ?? 'see the log'}`));
          return;
        }
        if (slot.stopping || closing) return;
        onCrash(index, code, slot.crashError);
      });
    });

  const onCrash = (index: number, code: number, error: string | undefined): void => {
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && crashes[0]! < now - CRASH_WINDOW_MS) crashes.shift();
    log.error({ worker: index, exit: code, error, crashes_in_window: crashes.length }, `gateway worker ${index} crashed`);
    if (crashes.length > MAX_RESTARTS) {
      fatal(
        new TickwireError(
          'WORKER_CRASH',
          `gateway workers crashed ${crashes.length} times within ${CRASH_WINDOW_MS / 1000} s (last: worker ${index}, ${error ?? `exit ${code}`})`,
        ),
      );
      return;
    }
    restarts++;
    spawn(index, port).then(
      () => log.warn({ worker: index, restarts }, `gateway worker ${index} restarted`),
      (err: unknown) => fatal(err as Error),
    );
  };

  const close = async (): Promise<void> => {
    closing = true;
    const live = slots.filter((s): s is Slot => s !== undefined);
    await Promise.all(
      live.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.stopping = true;
            const t = setTimeout(() => {
              // its sockets should be closed by now; terminating a uWS thread with open sockets aborts the process
              log.warn({ worker: s.index }, 'gateway worker did not stop in time: terminating it');
              void s.worker.terminate();
            }, config.shutdownTimeoutMs);
            s.worker.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            s.worker.postMessage({ t: 'stop' } satisfies ToWorker);
          }),
      ),
    );
    await main?.close();
  };

  // all at once, on the port probed above: the last worker is ready soon after the first
  const spawned = Promise.all(Array.from({ length: n }, (_, i) => spawn(i, port)));
  spawned.catch(() => undefined); // awaited below, after the main thread's start
  try {
    main = await mainStart;
    registry = main?.metrics?.registry ?? defaultRegistry();
    if (stopRequested) throw new TickwireError('STOPPED', 'stopped while starting');
    mainUp = true;
    for (const s of slots) if (s && !s.stopping) begin(s);
    await spawned;
  } catch (err) {
    await close().catch(() => undefined);
    // a worker that could not start, or a stop, says more than the worker closed for it
    throw err;
  }
  log.info(
    { host: config.host, port, workers: n, mode: embedded ? 'embedded' : 'nats', answersHosts: answeredHosts(config.gateway.allowedHosts, config.host) },
    `tickwire gateway listening on ws://${config.host}:${port}/v1/stream with ${n} workers`,
  );

  let closed: Promise<void> | undefined;
  return {
    config,
    log,
    port,
    workers: n,
    main,
    get restarts() {
      return restarts;
    },
    close: () => (closed ??= close()),
  };
}

/** tsx's ESM register API (its package exports only name the CommonJS build to require.resolve). */
function tsxEsmApi(): string {
  const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
  const mjs = cjs.replace(/\.cjs$/, '.mjs');
  return pathToFileURL(existsSync(mjs) ? mjs : cjs).href;
}

function defaultRegistry(): Registry {
  const r = new Registry();
  collectDefaultMetrics({ register: r });
  return r;
}

/** Fail early, with the key to change, when another process holds host:port; the port bound (for port 0, a free one). */
async function probePort(host: string, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err) =>
      reject(
        new TickwireError(
          'LISTEN',
          `cannot listen on ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? err.message} (the port is in use or the address is not local: PORT, HOST)`,
        ),
      ),
    );
    srv.listen({ host, port, exclusive: true }, () => {
      const bound = (srv.address() as { port: number }).port;
      srv.close(() => resolve(bound));
    });
  });
}
