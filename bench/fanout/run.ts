/**
 * tickwire fan-out benchmark: the orchestrator.
 *
 *   node --import tsx bench/fanout/run.ts [--quick] [--scenarios 1,2,3] [--servers ...]   (--help)
 *
 * Starts nats-server, a tick publisher and the load-client processes, then for each scenario runs
 * each server under test alone in its own process on the same seeded tick stream: connect and
 * subscribe every client, warm up, publish the measured ticks, wait for the queues to drain, and
 * read the server's CPU time and memory from /proc. Prints a markdown table and writes it to
 * bench/results/ (a timestamped file and latest.md). Every wait is bounded; children are ended by
 * PID on every exit path.
 */
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { LatencyHistogram } from './histogram.js';
import { RawWsClient } from './raw-ws-client.js';
import { cpuMicros, cpuSplit, machineCpu, peakRssBytes, rssBytes } from './proc-stats.js';
import { forkModule, freePort, killAllSync, spawnLogged, startReaper, stopAll, stopChild, waitMessage } from './children.js';
import { parseOptions, type FanoutScenario, type IdleScenario, type Options } from './scenarios.js';
import { renderSaturation, searchSaturation, uptime, type SaturationSearch } from './saturation.js';
import { describeVariant, renderVariants, type VariantRun } from './variants.js';
import { renderMarkdown, representativeFanout, representativeIdle, type FanoutResult, type IdleResult, type ScenarioResult } from './report.js';
import {
  BENCH_ASSET_CLASS,
  BENCH_SOURCE,
  SERVER_LABEL,
  subscribersPerSymbol,
  symbolName,
  wallMs,
  type ConnectResult,
  type ConnectSpec,
  type LoadReply,
  type LoadReport,
  type LoadStats,
  type PublisherReply,
  type ServerKind,
  type Target,
  type WorkerCommand,
} from './shared.js';

const HOST = '127.0.0.1';
let serverCount = 0;
const cores = cpus().length;
const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/**
 * BENCH_GATEWAY_ROOT: run the tickwire gateway from another checkout (e.g. an older commit, for a
 * before/after comparison with this benchmark's clients and figures); default this one
 */
const gatewayRoot = process.env.BENCH_GATEWAY_ROOT ? resolve(process.env.BENCH_GATEWAY_ROOT) : repoRoot;
const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

const log = (msg: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
};

// ---- load processes --------------------------------------------------------------------------

class LoadPool {
  readonly procs: ChildProcess[] = [];
  #nextId = 1;

  static async start(count: number, workers: number, logDir: string): Promise<LoadPool> {
    const pool = new LoadPool();
    const execArgv = process.env.BENCH_LOAD_EXEC_ARGV ? process.env.BENCH_LOAD_EXEC_ARGV.split(' ') : [];
    for (let i = 0; i < count; i++) {
      const child = forkModule('load-process', { args: ['--workers', String(workers)], logDir, logName: `load-${i}`, execArgv });
      pool.procs.push(child);
    }
    await Promise.all(pool.procs.map((p, i) => waitMessage(p, (m: LoadReply) => (m.type === 'ready' ? true : undefined), 30_000, `load process ${i}`)));
    return pool;
  }

  /** One command per process (same order), sequential per process; replies in the same order. */
  call<T>(commands: WorkerCommand[], timeoutMs: number, pick: (m: LoadReply) => T | undefined, what: string): Promise<T[]> {
    return Promise.all(
      commands.map((cmd, i) => {
        const id = this.#nextId++;
        const p = this.procs[i]!;
        const reply = waitMessage(p, (m: LoadReply) => (m.id === id ? pick(m) : undefined), timeoutMs, `${what} (load process ${i})`);
        p.send({ ...cmd, id });
        return reply;
      }),
    );
  }

  async connect(spec: Omit<ConnectSpec, 'firstClient' | 'count'>, total: number, timeoutMs: number): Promise<ConnectResult> {
    const per = Math.ceil(total / this.procs.length);
    const cmds: WorkerCommand[] = this.procs.map((_, i) => ({
      type: 'connect',
      spec: { ...spec, firstClient: i * per, count: Math.max(0, Math.min(per, total - i * per)) },
    }));
    const results = await this.call(cmds, timeoutMs, (m) => (m.type === 'connected' ? m.result : undefined), 'connect');
    return {
      ok: results.reduce((n, r) => n + r.ok, 0),
      failed: results.reduce((n, r) => n + r.failed, 0),
      rejectedChannels: results.reduce((n, r) => n + r.rejectedChannels, 0),
      errors: results.flatMap((r) => r.errors).slice(0, 5),
    };
  }

  /** mark: restart the clients' event-loop delay histograms (at the start of the measured window) */
  async stats(mark = false): Promise<LoadStats> {
    const list = await this.call(
      this.procs.map(() => ({ type: 'stats', mark })),
      10_000,
      (m) => (m.type === 'stats' ? m.stats : undefined),
      'stats',
    );
    return {
      delivered: list.reduce((n, s) => n + s.delivered, 0),
      received: list.reduce((n, s) => n + s.received, 0),
      frames: list.reduce((n, s) => n + s.frames, 0),
      lastRecvMs: Math.max(0, ...list.map((s) => s.lastRecvMs)),
      open: list.reduce((n, s) => n + s.open, 0),
      closed: list.reduce((n, s) => n + s.closed, 0),
      reads: list.reduce((n, s) => n + s.reads, 0),
      loopP99Ms: Math.max(0, ...list.map((s) => s.loopP99Ms)),
      loopMaxMs: Math.max(0, ...list.map((s) => s.loopMaxMs)),
    };
  }

  report(finalSeq: number[]): Promise<LoadReport[]> {
    return this.call(
      this.procs.map(() => ({ type: 'report', finalSeq })),
      30_000,
      (m) => (m.type === 'report' ? m.report : undefined),
      'report',
    );
  }

  async close(): Promise<void> {
    await this.call(
      this.procs.map(() => ({ type: 'close', timeoutMs: 5000 })),
      20_000,
      (m) => (m.type === 'closed' ? true : undefined),
      'close',
    );
  }
}

/** Pin a process (all its threads) to a CPU list with taskset; no-op when no list is given. */
function pin(pid: number | undefined, cpuList: string | undefined, what: string): void {
  if (!cpuList || pid === undefined) return;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpuList, String(pid)], { stdio: 'ignore' });
  } catch (err) {
    throw new Error(`cannot pin ${what} (pid ${pid}) to CPUs ${cpuList} with taskset: ${(err as Error).message}`, { cause: err });
  }
}

// ---- servers under test ----------------------------------------------------------------------

interface RunningServer {
  kind: ServerKind;
  child: ChildProcess;
  pid: number;
  target: Target;
  /** where the server's preload writes its event-loop delay on SIGURG (servers/preload.ts) */
  loopFile: string;
}

/**
 * The server's event-loop delay since the previous call (ms): the preload writes it on SIGURG and
 * restarts its histogram. Long turns of the server (a burst of topic writes) show here.
 */
async function loopStats(server: RunningServer): Promise<{ p99Ms: number; maxMs: number } | undefined> {
  const read = (): { n: number; p99Ms: number; maxMs: number } | undefined => {
    try {
      return JSON.parse(readFileSync(server.loopFile, 'utf8')) as { n: number; p99Ms: number; maxMs: number };
    } catch {
      return undefined;
    }
  };
  const before = read()?.n ?? 0;
  try {
    process.kill(server.pid, 'SIGURG');
  } catch {
    return undefined;
  }
  for (let i = 0; i < 40; i++) {
    await sleep(25);
    const r = read();
    if (r && r.n > before) return r;
  }
  return undefined;
}

interface Env {
  opts: Options;
  logDir: string;
  natsUrl: string;
  natsPid: number;
  instrumentsFile: string;
  publisher: ChildProcess;
  pool: LoadPool;
}

const PEER_MODULE: Readonly<Record<Exclude<ServerKind, 'tickwire'>, string>> = {
  uws: 'servers/uws-raw',
  ws: 'servers/ws-json',
  socketio: 'servers/socketio',
};

/** The gateway command, with the same preload as the peers (orphan guard, GC on SIGUSR2). */
function engineCommand(opts: Options, gatewayWorkers = opts.gatewayWorkers[0] ?? 1, root = gatewayRoot): { cmd: string; args: string[]; display: string } {
  const preload = join(repoRoot, 'bench/fanout/servers/preload.ts');
  const main = opts.engine === 'dist' ? 'dist/src/cli/main.js' : 'src/cli/main.ts';
  const loader = opts.engine === 'dist' ? [] : ['--import', 'tsx'];
  // BENCH_GATEWAY_EXEC_ARGV: extra node flags for the gateway (e.g. --cpu-prof) when investigating
  const extra = process.env.BENCH_GATEWAY_EXEC_ARGV ? process.env.BENCH_GATEWAY_EXEC_ARGV.split(' ') : [];
  return {
    cmd: process.execPath,
    args: [...extra, '--expose-gc', '--import', 'tsx', '--import', preload, main, 'gateway'],
    display: [
      ...(opts.batchMs !== undefined ? [`TICKWIRE_THROTTLE_BATCH_MS=${opts.batchMs}`] : []),
      ...(opts.lanes !== undefined ? [`TICKWIRE_THROTTLE_LANES=${opts.lanes}`] : []),
      'node',
      ...loader,
      root === repoRoot ? main : join(root, main),
      'gateway',
      '--workers',
      String(gatewayWorkers),
    ].join(' '),
  };
}

/** Probe until the gateway answers a WebSocket upgrade with its welcome frame. */
async function waitForGateway(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`gateway exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready`);
    const ok = await new Promise<boolean>((resolveProbe) => {
      let settled = false;
      const done = (v: boolean, why = ''): void => {
        if (settled) return;
        settled = true;
        last = why;
        resolveProbe(v);
      };
      const ws = new RawWsClient(
        { host: HOST, port, path: '/v1/stream', protocol: 'tickwire.v1.msgpack', handshakeTimeoutMs: 2000 },
        {
          onOpen: () => undefined,
          onMessage: (c) => {
            done(true);
            c.close(1000, 500);
          },
          onClose: (_c, code, reason) => done(false, `${code} ${reason}`),
        },
      );
      setTimeout(() => {
        done(false, 'no welcome');
        ws.destroy();
      }, 2500);
    });
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`gateway on port ${port} not ready after ${timeoutMs} ms (${last})`);
}

/** Whether the checkout at `root` has the `gateway.workers` key (issue #17), so that it can be told 1. */
function knowsWorkers(root: string): boolean {
  try {
    return /\bworkers:\s*z\b/.test(readFileSync(join(root, 'src/core/config.ts'), 'utf8'));
  } catch {
    return false;
  }
}

async function startServer(
  kind: ServerKind,
  env: Env,
  tag: string,
  gatewayWorkers = env.opts.gatewayWorkers[0] ?? 1,
  root = gatewayRoot,
): Promise<RunningServer> {
  const port = await freePort();
  const loopFile = join(env.logDir, `loop-${tag}-${kind}-${++serverCount}.json`);
  if (kind === 'tickwire') {
    const { cmd, args } = engineCommand(env.opts, gatewayWorkers, root);
    const child = spawnLogged(cmd, args, {
      cwd: root,
      logDir: env.logDir,
      logName: `${tag}-tickwire`,
      match: ' gateway',
      env: {
        NATS_URL: env.natsUrl,
        PORT: String(port),
        HOST,
        TICKWIRE_INSTRUMENTS: env.instrumentsFile,
        BENCH_LOOP_FILE: loopFile,
        LOG_LEVEL: 'warn',
        NODE_ENV: 'production',
        // explicit: the gateway's default is one worker per core (a checkout from before workers
        // has no such key, and rejects unknown TICKWIRE_ variables)
        ...(root === repoRoot || gatewayWorkers > 1 || knowsWorkers(root) ? { TICKWIRE_GATEWAY_WORKERS: String(gatewayWorkers) } : {}),
        ...(env.opts.batchMs !== undefined ? { TICKWIRE_THROTTLE_BATCH_MS: String(env.opts.batchMs) } : {}),
        ...(env.opts.lanes !== undefined ? { TICKWIRE_THROTTLE_LANES: String(env.opts.lanes) } : {}),
      },
    });
    pin(child.pid, env.opts.serverCpus, 'the gateway');
    await waitForGateway(child, port, 60_000);
    pin(child.pid, env.opts.serverCpus, 'the gateway'); // again: threads started meanwhile
    return { kind, child, pid: child.pid!, target: { kind, host: HOST, port }, loopFile };
  }
  const child = forkModule(PEER_MODULE[kind], {
    execArgv: ['--expose-gc', '--import', join(repoRoot, 'bench/fanout/servers/preload.ts')],
    logDir: env.logDir,
    logName: `${tag}-${kind}`,
    env: { NATS_URL: env.natsUrl, PORT: String(port), HOST, BENCH_LOOP_FILE: loopFile },
  });
  const listening = await waitMessage(
    child,
    (m: { type?: string; port?: number }) => (m.type === 'listening' ? m.port : undefined),
    30_000,
    `${kind} server start`,
  );
  pin(child.pid, env.opts.serverCpus, `the ${kind} server`);
  return { kind, child, pid: child.pid!, target: { kind, host: HOST, port: listening ?? port }, loopFile };
}

// ---- one fan-out run -------------------------------------------------------------------------

/**
 * BENCH_COUNT_WRITES=1: count the gateway's socket writes (sendto system calls: uWS writes each
 * socket with send()) over `ms` with `perf stat`; undefined when perf is missing or not allowed.
 * perf ends by itself (`-- sleep`), and is bounded by a timeout that ends it by PID.
 */
function countWrites(pid: number, ms: number): Promise<{ count: number; ms: number } | undefined> {
  return new Promise((done) => {
    const secs = Math.max(1, Math.floor(ms / 1000));
    execFile(
      'perf',
      ['stat', '-x', ',', '-e', 'syscalls:sys_enter_sendto', '-p', String(pid), '--', 'sleep', String(secs)],
      { timeout: (secs + 10) * 1000, killSignal: 'SIGKILL' },
      (err, _stdout, stderr) => {
        const m = /^(\d+),,syscalls:sys_enter_sendto/m.exec(stderr);
        if (err || !m) {
          log(`  BENCH_COUNT_WRITES: perf stat gave no count (${err ? err.message : stderr.trim().split('\n').pop()})`);
          done(undefined);
        } else done({ count: Number(m[1]), ms: secs * 1000 });
      },
    );
  });
}

async function runFanout(env: Env, s: FanoutScenario, kind: ServerKind, gatewayWorkers?: number, root?: string): Promise<FanoutResult> {
  const tag = `s${s.id}`;
  const server = await startServer(kind, env, tag, gatewayWorkers, root);
  const base: FanoutResult = emptyFanout(kind);
  try {
    const throttle = kind === 'tickwire' ? s.throttle : 0;
    const connectTimeout = Math.max(30_000, s.clients * 20);
    const t0 = Date.now();
    const conn = await env.pool.connect(
      {
        target: server.target,
        k: s.perClient,
        m: s.symbols,
        throttle,
        subscribe: true,
        concurrency: env.opts.concurrency,
        timeoutMs: 15_000,
        fullDecode: env.opts.fullDecode,
      },
      s.clients,
      connectTimeout,
    );
    base.connected = conn.ok;
    base.failed = conn.failed;
    base.rejectedChannels = conn.rejectedChannels;
    log(`  ${kind}: ${conn.ok} connected and subscribed in ${Date.now() - t0} ms${conn.failed ? `, ${conn.failed} failed (${conn.errors.join('; ')})` : ''}`);
    if (conn.ok === 0) throw new Error(`no client could connect: ${conn.errors.join('; ')}`);
    await sleep(300); // let upstream subscriptions settle before the first tick
    base.rssConnected = rssBytes(server.pid);
    const quiet = await waitQuiet(env.opts.waitQuietMs);
    base.quietBusy = quiet.busy;
    base.quietWaitMs = quiet.waitedMs;

    // publish: warm-up, then the measured phase; CPU counters are read when the measured phase starts
    let start: CpuSnapshot | undefined;
    let measureStart = NaN;
    let atStart: LoadStats | undefined;
    let writes: Promise<{ count: number; ms: number } | undefined> = Promise.resolve(undefined);
    const measuring = waitMessage(
      env.publisher,
      (m: PublisherReply) => (m.type === 'measuring' ? m.atMs : undefined),
      s.warmupMs + 60_000,
      'publisher warm-up',
    ).then(async (at) => {
      start = cpuSnapshot(env, server);
      measureStart = at;
      if (process.env.BENCH_COUNT_WRITES === '1') writes = countWrites(server.pid, s.durationMs);
      void loopStats(server); // restarts the server's event-loop delay histogram
      atStart = await env.pool.stats(true);
    });
    const done = waitMessage(env.publisher, (m: PublisherReply) => (m.type === 'done' ? m : undefined), s.warmupMs + s.durationMs * 3 + 60_000, 'publisher');
    env.publisher.send({ type: 'start', rate: s.rate, symbols: s.symbols, warmupMs: s.warmupMs, durationMs: s.durationMs, seed: env.opts.seed });
    await measuring;
    const pub = await done;
    if (pub.type !== 'done') throw new Error('publisher did not finish');

    // what the clients are owed: every measured tick times the subscribers of its symbol
    const subs = subscribersPerSymbol(s.clients, s.perClient, s.symbols);
    let expected = 0;
    let published = 0;
    for (let i = 0; i < s.symbols; i++) {
      expected += pub.measured[i]! * subs[i]!;
      published += pub.measured[i]!;
    }
    if (conn.failed > 0) expected = Math.round((expected * conn.ok) / s.clients);
    base.expected = expected;
    base.published = published;
    base.publishRate = pub.measuredRate;

    // drain: until everything owed arrived (unthrottled), or nothing new for a quiet period;
    // the CPU counters are taken at the poll that saw the last progress
    const quietMs = Math.max(env.opts.quick ? 300 : 1000, s.throttle * 4);
    const drainStart = Date.now();
    let lastReceived = -1;
    let lastChange = Date.now();
    let end = cpuSnapshot(env, server);
    let endStats: LoadStats | undefined;
    let endWallMs = NaN;
    base.drained = false;
    while (Date.now() - drainStart < s.drainTimeoutMs) {
      const stats = await env.pool.stats();
      const snap = cpuSnapshot(env, server);
      if (stats.received !== lastReceived) {
        lastReceived = stats.received;
        lastChange = Date.now();
        end = snap;
        endStats = stats;
        endWallMs = wallMs();
      }
      if (throttle === 0 && stats.delivered >= expected) {
        base.drained = true;
        break;
      }
      if (Date.now() - lastChange > quietMs) {
        base.drained = true;
        break;
      }
      await sleep(100);
    }
    if (!start || !atStart || !endStats) throw new Error('measurement never started');
    const w = await writes;
    if (w) {
      base.serverWrites = w.count;
      base.serverWritesMs = w.ms;
    }
    base.cpuMicros = end.server - start.server;
    base.cpuSystemMicros = end.serverSystem - start.serverSystem;
    base.otherCpuMicros = end.box.busy - start.box.busy - (end.server - start.server) - (end.clients - start.clients) - (end.feed - start.feed);
    base.cpuWindowMs = (end.box.total - start.box.total) / 1000 / cores;
    base.clientCpuMicros = end.clients - start.clients;
    base.feedCpuMicros = end.feed - start.feed;
    base.boxBusy = (end.box.busy - start.box.busy) / (end.box.total - start.box.total);
    base.rssPeak = peakRssBytes(server.pid);
    base.received = endStats.received - atStart.received;
    base.frames = endStats.frames - atStart.frames;
    base.reads = endStats.reads - atStart.reads;
    base.clientLoopP99Ms = endStats.loopP99Ms;
    base.clientLoopMaxMs = endStats.loopMaxMs;
    const serverLoop = await loopStats(server);
    if (serverLoop) {
      base.serverLoopP99Ms = serverLoop.p99Ms;
      base.serverLoopMaxMs = serverLoop.maxMs;
    }

    const reports = await env.pool.report(pub.finalSeq);
    const hist = new LatencyHistogram();
    for (const r of reports) hist.addSparse(r.hist, r.latencyMax, r.latencySum);
    const sum = (f: (r: LoadReport) => number): number => reports.reduce((n, r) => n + f(r), 0);
    base.delivered = sum((r) => r.delivered);
    base.bytes = sum((r) => r.bytes);
    base.skipped = sum((r) => r.skipped);
    base.stale = sum((r) => r.stale);
    base.badFrames = sum((r) => r.badFrames);
    base.finalOk = sum((r) => r.finalOk);
    base.finalTotal = sum((r) => r.finalTotal);
    base.negative = sum((r) => r.negative);
    for (const r of reports) for (const [c, n] of Object.entries(r.closeCodes)) base.unexpectedCloses[c] = (base.unexpectedCloses[c] ?? 0) + n;
    // the window ends at the last measured update, or (none arrived) at the last progress seen
    const lastRecv = Math.max(...reports.map((r) => r.lastRecvMs));
    base.windowMs = (lastRecv > 0 ? lastRecv : endWallMs) - measureStart;
    base.drainMs = Math.max(0, (lastRecv > 0 ? lastRecv : endWallMs) - pub.atMs);
    base.foreign = sum((r) => r.foreign);
    base.serverErrors = sum((r) => r.serverErrors);
    base.p50 = hist.quantile(0.5);
    base.p99 = hist.quantile(0.99);
    base.p999 = hist.quantile(0.999);
    base.max = hist.max;
    base.mean = hist.mean;
    log(
      `  ${kind}: ${base.delivered}/${base.expected} updates (${base.received} in window), p99 ${base.p99.toFixed(2)} ms, ` +
        `${(base.cpuMicros / Math.max(1, base.received)).toFixed(3)} µs CPU/update, window ${Math.round(base.windowMs)} ms, box ${(base.boxBusy * 100).toFixed(0)}% busy`,
    );
    return base;
  } finally {
    await env.pool.close().catch((err: unknown) => log(`  closing clients failed: ${(err as Error).message}`));
    await stopChild(server.child, 5000);
  }
}

interface CpuSnapshot {
  /** µs of CPU of the server under test, of the load processes, and of publisher + nats-server */
  server: number;
  serverSystem: number;
  clients: number;
  feed: number;
  box: { busy: number; total: number };
}

function cpuSnapshot(env: Env, server: RunningServer): CpuSnapshot {
  const sc = cpuSplit(server.pid);
  return {
    server: sc.user + sc.system,
    serverSystem: sc.system,
    clients: env.pool.procs.reduce((n, p) => n + cpuMicros(p.pid!), 0),
    feed: cpuMicros(env.publisher.pid!) + cpuMicros(env.natsPid),
    box: machineCpu(),
  };
}

/**
 * The machine is shared (tests may run next to the benchmark): before a measured run, wait up to
 * `maxMs` for a second in which it is less than 25% busy. Returns the last second's busy fraction.
 */
async function waitQuiet(maxMs: number): Promise<{ busy: number; waitedMs: number }> {
  const t0 = Date.now();
  for (;;) {
    const sampleMs = maxMs > 0 ? 1000 : 250;
    const a = machineCpu();
    await sleep(sampleMs);
    const b = machineCpu();
    const busy = (b.busy - a.busy) / (b.total - a.total);
    const waitedMs = Date.now() - t0 - sampleMs;
    if (busy < 0.25 || Date.now() - t0 >= maxMs) {
      if (busy >= 0.25) log(`  machine still ${(busy * 100).toFixed(0)}% busy after ${Math.round(waitedMs / 1000)} s: measuring anyway`);
      return { busy, waitedMs };
    }
  }
}

function emptyFanout(server: ServerKind): FanoutResult {
  return {
    server,
    connected: 0,
    received: 0,
    quietWaitMs: 0,
    cpuSystemMicros: NaN,
    otherCpuMicros: NaN,
    cpuWindowMs: NaN,
    clientCpuMicros: NaN,
    feedCpuMicros: NaN,
    boxBusy: NaN,
    foreign: 0,
    serverErrors: 0,
    failed: 0,
    rejectedChannels: 0,
    published: 0,
    publishRate: NaN,
    expected: 0,
    delivered: 0,
    frames: 0,
    reads: 0,
    clientLoopP99Ms: NaN,
    clientLoopMaxMs: NaN,
    bytes: 0,
    windowMs: NaN,
    drainMs: NaN,
    drained: false,
    p50: NaN,
    p99: NaN,
    p999: NaN,
    max: NaN,
    mean: NaN,
    cpuMicros: NaN,
    rssConnected: NaN,
    rssPeak: NaN,
    skipped: 0,
    stale: 0,
    badFrames: 0,
    finalOk: 0,
    finalTotal: 0,
    negative: 0,
    unexpectedCloses: {},
  };
}

// ---- idle memory -----------------------------------------------------------------------------

/** RSS after two full GCs (the preload runs gc() on SIGUSR2) and a settle period. */
async function settledRss(pid: number, settleMs: number): Promise<number> {
  for (let i = 0; i < 2; i++) {
    try {
      process.kill(pid, 'SIGUSR2');
    } catch {
      // gone: rssBytes says NaN
    }
    await sleep(settleMs / 2);
  }
  return rssBytes(pid);
}

async function runIdle(env: Env, s: IdleScenario, kind: ServerKind): Promise<IdleResult> {
  const server = await startServer(kind, env, `s${s.id}`);
  const result: IdleResult = { server: kind, connected: 0, failed: 0, rssBefore: NaN, rssAfterFirst: NaN, rssAfter: NaN, firstBatch: 0 };
  try {
    result.rssBefore = await settledRss(server.pid, s.settleMs);
    const spec = { target: server.target, k: 1, m: 1, throttle: 0, subscribe: false, concurrency: env.opts.concurrency, timeoutMs: 15_000, fullDecode: false };
    // idle clients are opened in two batches on separate load processes' worth of ranges: 10%, then the rest
    const first = Math.max(1, Math.round(s.clients / 10));
    const c1 = await env.pool.connect(spec, first, Math.max(30_000, first * 20));
    result.rssAfterFirst = await settledRss(server.pid, s.settleMs);
    const c2 = await env.pool.connect(spec, s.clients - first, Math.max(30_000, s.clients * 20));
    result.connected = c1.ok + c2.ok;
    result.failed = c1.failed + c2.failed;
    result.firstBatch = c1.ok;
    result.rssAfter = await settledRss(server.pid, s.settleMs);
    const stats = await env.pool.stats();
    log(
      `  ${kind}: ${result.connected} idle (${stats.open} open), RSS ${(result.rssBefore / 1048576).toFixed(1)} -> ${(result.rssAfter / 1048576).toFixed(1)} MB`,
    );
    if (c1.failed + c2.failed > 0) log(`  ${kind}: ${c1.failed + c2.failed} failed (${[...c1.errors, ...c2.errors].slice(0, 3).join('; ')})`);
    return result;
  } finally {
    await env.pool.close().catch((err: unknown) => log(`  closing clients failed: ${(err as Error).message}`));
    await stopChild(server.child, 5000);
  }
}

// ---- main ------------------------------------------------------------------------------------

async function startNats(logDir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawnLogged(NATS_SERVER, ['-a', HOST, '-p', String(port)], { logDir, logName: 'nats-server', match: 'nats-server' });
  const deadline = Date.now() + 10_000;
  const { connect } = await import('node:net');
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode} (see ${logDir}/nats-server.log)`);
    const ok = await new Promise<boolean>((r) => {
      const sock = connect({ host: HOST, port }, () => {
        sock.destroy();
        r(true);
      });
      sock.on('error', () => r(false));
    });
    if (ok) return { child, url: `nats://${HOST}:${port}` };
    await sleep(50);
  }
  throw new Error('nats-server did not start listening within 10 s');
}

function writeInstruments(dir: string, count: number): string {
  const file = join(dir, 'instruments.json');
  const list = Array.from({ length: count }, (_, i) => ({
    symbol: symbolName(i),
    assetClass: BENCH_ASSET_CLASS,
    currency: 'USD',
    pricePrecision: 2,
    providers: [BENCH_SOURCE],
  }));
  writeFileSync(file, JSON.stringify(list));
  return file;
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const t0 = Date.now();
  const workDir = mkdtempSync(join(tmpdir(), 'tickwire-bench-'));
  const logDir = join(workDir, 'logs');
  mkdirSync(logDir);
  log(`work dir ${workDir} (child logs in ${logDir})`);

  const maxClients = Math.max(...opts.scenarios.map((s) => s.clients));
  const loadProcs = Math.max(1, Math.ceil(maxClients / opts.maxConnsPerProcess));
  const maxSymbols = Math.max(1, ...opts.scenarios.map((s) => (s.kind === 'fanout' ? s.symbols : 1)));
  const instrumentsFile = writeInstruments(workDir, maxSymbols);

  startReaper(logDir);
  const nats = await startNats(logDir);
  log(`nats-server at ${nats.url}`);
  const publisher = forkModule('publisher', { logDir, logName: 'publisher', env: { NATS_URL: nats.url } });
  await waitMessage(publisher, (m: PublisherReply) => (m.type === 'ready' ? true : undefined), 30_000, 'publisher start');
  const pool = await LoadPool.start(loadProcs, opts.workers, logDir);
  pin(nats.child.pid, opts.loadCpus, 'nats-server');
  pin(publisher.pid, opts.loadCpus, 'the publisher');
  for (const p of pool.procs) pin(p.pid, opts.loadCpus, 'a load process');
  log(`${loadProcs} load process(es) × ${opts.workers} worker threads`);
  const env: Env = { opts, logDir, natsUrl: nats.url, natsPid: nats.child.pid!, instrumentsFile, publisher, pool };

  if (opts.saturate) {
    const s =
      opts.scenarios.find((x): x is FanoutScenario => x.kind === 'fanout' && x.throttle === 0) ??
      opts.scenarios.find((x): x is FanoutScenario => x.kind === 'fanout');
    if (!s) throw new Error('--saturate needs a fan-out scenario (1 or 2)');
    const searches: SaturationSearch[] = [];
    const uptimeBefore = uptime();
    for (const w of opts.gatewayWorkers) {
      log(
        `saturation search: ${w} gateway worker${w > 1 ? 's' : ''}, ${s.clients} clients × ${s.perClient} of ${s.symbols} symbols, p99 < ${opts.p99LimitMs} ms`,
      );
      searches.push(
        await searchSaturation(
          s,
          w,
          opts,
          (rate) =>
            runFanout(env, { ...s, rate }, 'tickwire', w).catch((err: unknown) => {
              log(`  probe failed: ${(err as Error).message}`);
              return { ...emptyFanout('tickwire'), error: (err as Error).message };
            }),
          log,
        ),
      );
    }
    const md = renderSaturation(
      {
        ...runInfo(startedAt, t0),
        uptimeBefore,
        uptimeAfter: uptime(),
        loadProcesses: `${loadProcs} process${loadProcs > 1 ? 'es' : ''} × ${opts.workers} worker threads`,
      },
      s,
      searches,
      opts.p99LimitMs,
    );
    process.stdout.write('\n' + md + '\n');
    if (opts.write) {
      const dir = resolve(repoRoot, opts.outDir);
      mkdirSync(dir, { recursive: true });
      const label = opts.label ? `-${opts.label}` : '';
      const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\..*/, '');
      writeFileSync(join(dir, `saturation-${stamp}${label}.md`), md + '\n');
      log(`wrote ${join(dir, `saturation-${stamp}${label}.md`)}`);
    }
    await stopAll();
    if (!process.env.BENCH_KEEP_LOGS) rmSync(workDir, { recursive: true, force: true });
    return 0;
  }

  if (opts.variants) {
    const variants = opts.variants;
    const label = opts.label ? `-${opts.label}` : '';
    const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\..*/, '');
    let failed = false;
    for (const s of opts.scenarios) {
      if (s.kind !== 'fanout') continue;
      log(`scenario ${s.id}: ${s.title}; variants ${variants.map((v) => v.label).join(', ')}, ${opts.repeat} round(s) interleaved`);
      const runs: VariantRun[] = [];
      for (let round = 1; round <= opts.repeat; round++) {
        for (const v of variants) {
          const up = uptime();
          log(` variant ${v.label} (${describeVariant(v)}), round ${round} of ${opts.repeat}; ${up}`);
          const venv: Env = { ...env, opts: { ...opts, batchMs: v.batchMs, lanes: v.lanes } };
          const result = await runFanout(venv, s, 'tickwire', v.workers, v.root === undefined ? gatewayRoot : resolve(v.root)).catch((err: unknown) => {
            log(`  ${v.label} failed: ${(err as Error).stack ?? String(err)}`);
            failed = true;
            return { ...emptyFanout('tickwire'), error: (err as Error).message };
          });
          runs.push({ variant: v, round, uptime: up, result });
        }
      }
      const md = renderVariants(
        {
          ...runInfo(startedAt, t0),
        },
        s,
        variants,
        runs,
      );
      process.stdout.write('\n' + md + '\n');
      if (opts.write) {
        const dir = resolve(repoRoot, opts.outDir);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `variants-${stamp}-s${s.id}${label}.md`), md + '\n');
        log(`wrote ${join(dir, `variants-${stamp}-s${s.id}${label}.md`)}`);
      }
    }
    await stopAll();
    if (failed) log(`some runs failed: child logs kept in ${logDir}`);
    else if (!process.env.BENCH_KEEP_LOGS) rmSync(workDir, { recursive: true, force: true });
    return failed ? 1 : 0;
  }

  const results: ScenarioResult[] = [];
  for (const s of opts.scenarios) {
    log(`scenario ${s.id}: ${s.title}`);
    const r: ScenarioResult = { scenario: s, fanout: [], idle: [] };
    results.push(r);
    // repeats are interleaved (A B C D A B C D ...) so that a noisy spell on the machine hits
    // every server rather than one
    const fanoutRuns = new Map<ServerKind, FanoutResult[]>();
    const idleRuns = new Map<ServerKind, IdleResult[]>();
    for (let rep = 1; rep <= opts.repeat; rep++) {
      for (const kind of opts.servers) {
        log(` ${SERVER_LABEL[kind]}${opts.repeat > 1 ? ` (run ${rep} of ${opts.repeat})` : ''}`);
        if (s.kind === 'fanout') {
          const one = await runFanout(env, s, kind).catch((err: unknown) => {
            log(`  ${kind} failed: ${(err as Error).stack ?? String(err)}`);
            return { ...emptyFanout(kind), error: (err as Error).message };
          });
          fanoutRuns.set(kind, [...(fanoutRuns.get(kind) ?? []), one]);
        } else {
          const one = await runIdle(env, s, kind).catch((err: unknown) => {
            log(`  ${kind} failed: ${(err as Error).stack ?? String(err)}`);
            const failed: IdleResult = {
              server: kind,
              connected: 0,
              failed: 0,
              rssBefore: NaN,
              rssAfterFirst: NaN,
              rssAfter: NaN,
              firstBatch: 0,
              error: (err as Error).message,
            };
            return failed;
          });
          idleRuns.set(kind, [...(idleRuns.get(kind) ?? []), one]);
        }
      }
    }
    for (const kind of opts.servers) {
      const f = fanoutRuns.get(kind);
      if (f) r.fanout.push(representativeFanout(f));
      const i = idleRuns.get(kind);
      if (i) r.idle.push(representativeIdle(i));
    }
  }

  const md = renderMarkdown(
    {
      ...runInfo(startedAt, t0),
      memGiB: totalmem() / 2 ** 30,
      loadProcesses: `${loadProcs} process${loadProcs > 1 ? 'es' : ''} × ${opts.workers} worker threads`,
      options: opts,
      engineCommand: engineCommand(opts).display,
      command: ['node --import tsx bench/fanout/run.ts', ...process.argv.slice(2)].join(' '),
    },
    results,
  );
  process.stdout.write('\n' + md + '\n');
  if (opts.write) {
    const dir = resolve(repoRoot, opts.outDir);
    mkdirSync(dir, { recursive: true });
    const label = opts.label ? `-${opts.label}` : '';
    const stamp = startedAt.toISOString().replace(/[:]/g, '').replace(/\..*/, '');
    writeFileSync(join(dir, `fanout-${stamp}${label}.md`), md + '\n');
    writeFileSync(join(dir, `latest${label}.md`), md + '\n');
    log(`wrote ${join(dir, `fanout-${stamp}${label}.md`)} and latest${label}.md`);
  }
  await stopAll();
  if (process.env.BENCH_KEEP_LOGS) log(`logs kept in ${logDir}`);
  const failures = results.some((r) => r.fanout.some((f) => f.error) || r.idle.some((i) => i.error));
  if (failures) log(`some runs failed: child logs kept in ${logDir}`);
  else if (!process.env.BENCH_KEEP_LOGS) rmSync(workDir, { recursive: true, force: true });
  return failures ? 1 : 0;
}

// every exit path ends the children, by PID
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    log(`${sig}: stopping children`);
    void stopAll(1000).finally(() => process.exit(130));
  });
}

const opts0 = (() => {
  try {
    return parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
})();
const deadline = setTimeout(() => {
  log(`deadline of ${opts0.deadlineMs / 1000} s reached: stopping`);
  void stopAll(1000).finally(() => process.exit(3));
}, opts0.deadlineMs);
deadline.unref();

main()
  .then((code) => {
    process.exitCode = code;
  })
  .catch(async (err: unknown) => {
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    await stopAll(1000);
    process.exitCode = 1;
  });

/** What every report of this run says about it: when, how long, on what, and the command line. */
function runInfo(startedAt: Date, t0: number): { startedAt: Date; elapsedMs: number; node: string; cpus: string; cores: number; command: string } {
  return {
    startedAt,
    elapsedMs: Date.now() - t0,
    node: process.versions.node,
    cpus: cpus()[0]?.model.trim() ?? 'unknown CPU',
    cores: cpus().length,
    command: ['node --import tsx bench/fanout/run.ts', ...process.argv.slice(2)].join(' '),
  };
}
