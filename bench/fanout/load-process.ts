/**
 * A load-client process: runs `--workers` worker threads, splits each command's clients among
 * them and merges their answers. Several of these run side by side when one process would exceed
 * the open-file limit. Exits when the orchestrator goes away.
 */
import { Worker } from 'node:worker_threads';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConnectResult, LoadCommand, LoadReply, LoadReport, LoadStats, WorkerCommand, WorkerReply } from './shared.js';

const send = (msg: LoadReply): void => {
  process.send?.(msg);
};

const workersArg = process.argv.indexOf('--workers');
const workerCount = Math.max(1, Number(workersArg >= 0 ? process.argv[workersArg + 1] : 2) || 2);
const ext = extname(fileURLToPath(import.meta.url));
const workerUrl = new URL(`./client-worker${ext}`, import.meta.url);

/**
 * Worker threads do not inherit tsx's loader hooks (Node 20), so under tsx a worker first
 * registers tsx and then imports the TypeScript module; compiled, the module is loaded directly.
 */
function spawnWorker(i: number): Worker {
  const w =
    ext === '.ts'
      ? new Worker(
          `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); })`,
          { eval: true },
        )
      : new Worker(workerUrl);
  w.on('error', (err) => {
    send({ type: 'fatal', message: `load worker ${i} failed: ${err.stack ?? err.message}` });
    process.exit(1);
  });
  return w;
}
const workers: Worker[] = Array.from({ length: workerCount }, (_, i) => spawnWorker(i));

/** Send one command to every worker (with its own payload) and collect one reply from each. */
function all(commands: WorkerCommand[]): Promise<WorkerReply[]> {
  return Promise.all(
    commands.map(
      (cmd, i) =>
        new Promise<WorkerReply>((resolve) => {
          const w = workers[i]!;
          const onMessage = (reply: WorkerReply): void => {
            if (reply.type === 'fatal') {
              send({ type: 'fatal', message: reply.message });
              process.exit(1);
            }
            w.off('message', onMessage);
            resolve(reply);
          };
          w.on('message', onMessage);
          w.postMessage(cmd);
        }),
    ),
  );
}

function sumStats(list: LoadStats[]): LoadStats {
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

/** Merge reports; histograms stay sparse lists and are merged by the orchestrator. */
export function mergeReports(list: LoadReport[]): LoadReport {
  const hist: number[] = [];
  const closeCodes: Record<string, number> = {};
  for (const r of list) {
    hist.push(...r.hist);
    for (const [k, v] of Object.entries(r.closeCodes)) closeCodes[k] = (closeCodes[k] ?? 0) + v;
  }
  const sum = (f: (r: LoadReport) => number): number => list.reduce((n, r) => n + f(r), 0);
  return {
    ...sumStats(list),
    bytes: sum((r) => r.bytes),
    skipped: sum((r) => r.skipped),
    stale: sum((r) => r.stale),
    badFrames: sum((r) => r.badFrames),
    foreign: sum((r) => r.foreign),
    serverErrors: sum((r) => r.serverErrors),
    finalOk: sum((r) => r.finalOk),
    finalTotal: sum((r) => r.finalTotal),
    negative: sum((r) => r.negative),
    hist,
    latencyMax: Math.max(0, ...list.map((r) => r.latencyMax)),
    latencySum: sum((r) => r.latencySum),
    closeCodes,
  };
}

async function handle(cmd: LoadCommand): Promise<void> {
  const { id } = cmd;
  switch (cmd.type) {
    case 'connect': {
      const { spec } = cmd;
      const per = Math.ceil(spec.count / workers.length);
      const cmds: WorkerCommand[] = workers.map((_, i) => {
        const first = i * per;
        const count = Math.max(0, Math.min(per, spec.count - first));
        return { type: 'connect', spec: { ...spec, firstClient: spec.firstClient + first, count } };
      });
      const replies = await all(cmds);
      const result: ConnectResult = { ok: 0, failed: 0, rejectedChannels: 0, errors: [] };
      for (const r of replies) {
        if (r.type !== 'connected') continue;
        result.ok += r.result.ok;
        result.failed += r.result.failed;
        result.rejectedChannels += r.result.rejectedChannels;
        result.errors.push(...r.result.errors);
      }
      result.errors = result.errors.slice(0, 5);
      send({ type: 'connected', result, id });
      return;
    }
    case 'stats': {
      const replies = await all(workers.map(() => cmd));
      send({ type: 'stats', stats: sumStats(replies.flatMap((r) => (r.type === 'stats' ? [r.stats] : []))), id });
      return;
    }
    case 'report': {
      const replies = await all(workers.map(() => ({ type: 'report', finalSeq: cmd.finalSeq }) as WorkerCommand));
      send({ type: 'report', report: mergeReports(replies.flatMap((r) => (r.type === 'report' ? [r.report] : []))), id });
      return;
    }
    case 'close': {
      await all(workers.map(() => ({ type: 'close', timeoutMs: cmd.timeoutMs }) as WorkerCommand));
      // workers hold per-run state: replace them so the next run starts clean
      await Promise.all(workers.map((w) => w.terminate()));
      for (let i = 0; i < workers.length; i++) workers[i] = spawnWorker(i);
      send({ type: 'closed', id });
      return;
    }
  }
}

process.on('message', (cmd: LoadCommand) => {
  handle(cmd).catch((err: unknown) => {
    send({ type: 'fatal', message: (err as Error).stack ?? String(err), id: cmd.id });
  });
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
