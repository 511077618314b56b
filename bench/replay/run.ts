/**
 * Durable replay benchmark: does a replay flood stall the gateway?
 *
 *   npm run bench:replay -- [--seconds 15] [--connections 20] [--events 10000] [--resubscribe-ms 100]
 *                           [--server-root DIR]
 *
 * Starts `tickwire start` (no feeds, auth required, memory execution log) in its own process,
 * records `--events` executions for one user, then runs two kinds of clients:
 * - a load process with `--connections` connections of that user, each sending
 *   `subscribe executions since:0` every `--resubscribe-ms` (within the default message rate);
 * - in this process, a bystander of another user that sends `ping` every 25 ms and asks
 *   `/health` every 100 ms.
 * It prints the bystander's ping and /health round trips (p50, p99, max), the replayed events and
 * bytes per second the load connections received, the server's CPU, and `uptime` before and after.
 * Server settings come from TICKWIRE_* variables of this process (e.g.
 * TICKWIRE_EXECUTIONS_REPLAY_PER_USER_PER_SEC=0 to turn the per-user budget off). `--server-root`
 * runs the server of another checkout (to measure a version before the replay limits).
 * Every child is ended by PID on every exit path.
 */
import { execFileSync, fork, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { LatencyHistogram } from '../fanout/histogram.js';
import { cpuMicros } from '../fanout/proc-stats.js';
import { freePort } from '../fanout/children.js';

const HOST = '127.0.0.1';
const SECRET = 'bench-replay-secret-0123456789-abcdefghij';
const SERVICE_TOKEN = 'bench-replay-service-token-0123456789';
const USER = 'replayer';
const here = fileURLToPath(import.meta.url);
const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

interface Options {
  seconds: number;
  connections: number;
  events: number;
  resubscribeMs: number;
  serverRoot: string;
}

function parseOptions(argv: string[]): Options {
  const o: Options = { seconds: 15, connections: 20, events: 10_000, resubscribeMs: 100, serverRoot: repoRoot };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (min: number): number => {
      const v = Number(next());
      if (!Number.isFinite(v) || v < min) throw new Error(`${a} must be a number >= ${min}`);
      return v;
    };
    if (a === '--seconds') o.seconds = num(1);
    else if (a === '--connections') o.connections = num(1);
    else if (a === '--events') o.events = num(1);
    else if (a === '--resubscribe-ms') o.resubscribeMs = num(20);
    else if (a === '--server-root') o.serverRoot = resolve(next());
    else if (a === '--help' || a === '-h') {
      process.stdout.write(readHelp());
      process.exit(0);
    } else throw new Error(`unknown option ${a} (--help)`);
  }
  return o;
}

function readHelp(): string {
  return 'npm run bench:replay -- [--seconds 15] [--connections 20] [--events 10000] [--resubscribe-ms 100] [--server-root DIR]\n';
}

const jwt = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('2h').sign(new TextEncoder().encode(SECRET));

const log = (msg: string): void => void process.stderr.write(`[bench:replay ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---- load process: connections that re-subscribe with since:0 in a loop ----------------------

interface LoadReport {
  events: number;
  bytes: number;
  resubscribes: number;
  closes: Record<string, number>;
}

async function loadMain(): Promise<void> {
  const { url, token, connections, resubscribeMs } = JSON.parse(process.argv[3]!) as { url: string; token: string; connections: number; resubscribeMs: number };
  const report: LoadReport = { events: 0, bytes: 0, resubscribes: 0, closes: {} };
  const needle = Buffer.from('"ch":"executions"');
  const sockets: WebSocket[] = [];
  const timers: NodeJS.Timeout[] = [];
  await Promise.all(
    Array.from(
      { length: connections },
      (_, i) =>
        new Promise<void>((ok, fail) => {
          const ws = new WebSocket(url, ['tickwire.v1.json'], { headers: { authorization: `Bearer ${token}` }, maxPayload: 64 * 1024 * 1024 });
          ws.on('message', (data: Buffer) => {
            report.bytes += data.length;
            for (let at = data.indexOf(needle); at >= 0; at = data.indexOf(needle, at + needle.length)) report.events++;
          });
          ws.on('close', (code: number) => void (report.closes[code] = (report.closes[code] ?? 0) + 1));
          ws.on('error', () => undefined);
          ws.once('open', () => {
            sockets.push(ws);
            let id = 0;
            const resubscribe = (): void => {
              if (ws.readyState !== WebSocket.OPEN) return;
              ws.send(JSON.stringify({ op: 'subscribe', id: ++id, channels: ['executions'], since: 0 }));
              report.resubscribes++;
            };
            // spread the connections over the interval
            timers.push(
              setTimeout(
                () => {
                  resubscribe();
                  timers.push(setInterval(resubscribe, resubscribeMs));
                },
                (i * resubscribeMs) / connections,
              ),
            );
            ok();
          });
          ws.once('unexpected-response', (_req, res) => fail(new Error(`connection ${i} refused: ${res.statusCode}`)));
        }),
    ),
  );
  process.send!({ type: 'ready' });
  process.on('message', (msg: { type: string }) => {
    if (msg.type === 'mark') process.send!({ type: 'report', report: { ...report, closes: { ...report.closes } } });
    if (msg.type === 'stop') {
      for (const t of timers) clearTimeout(t);
      for (const ws of sockets) ws.terminate();
      process.send!({ type: 'report', report }, () => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---- orchestrator -------------------------------------------------------------------------------

const children = new Set<ChildProcess>();
function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) return Promise.resolve();
  return new Promise((done) => {
    const t = setTimeout(() => {
      try {
        process.kill(c.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 3000);
    c.once('exit', () => {
      clearTimeout(t);
      done();
    });
    try {
      process.kill(c.pid!, 'SIGTERM');
    } catch {
      clearTimeout(t);
      done();
    }
  });
}
process.on('exit', () => {
  for (const c of children)
    if (c.pid !== undefined && c.exitCode === null)
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

async function until(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** A metric's value; undefined when absent or when the server does not answer within 30 s. */
async function metric(base: string, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
    const m = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();
const fmt = (ms: number): string => (Number.isFinite(ms) ? ms.toFixed(2) : 'n/a');

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const port = await freePort();
  const base = `http://${HOST}:${port}`;
  const loadBefore = uptime();
  log(`server from ${o.serverRoot} on port ${port}`);
  const server = spawn(process.execPath, ['--import', 'tsx', resolve(o.serverRoot, 'src/cli/main.ts'), 'start'], {
    cwd: o.serverRoot,
    env: {
      ...process.env,
      HOST,
      PORT: String(port),
      LOG_LEVEL: 'warn',
      TICKWIRE_FEEDS: '',
      TICKWIRE_AUTH: 'required',
      TICKWIRE_JWT_SECRET: SECRET,
      TICKWIRE_SERVICE_TOKEN: SERVICE_TOKEN,
      TICKWIRE_EXECUTIONS_MAX_PER_USER: String(Math.max(10_000, o.events)),
      NATS_URL: '',
      REDIS_URL: '',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.add(server);
  try {
    await until(async () => (await fetch(`${base}/health`)).status === 200, 60_000, 'the server /health');

    log(`recording ${o.events} executions for one user`);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = ++next; i <= o.events; i = ++next) {
          const r = await fetch(`${base}/v1/executions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              user: USER,
              id: `bench-${i}`,
              order: `order-${i}`,
              sym: 'AAPL',
              side: i % 2 ? 'buy' : 'sell',
              qty: 1 + (i % 7),
              p: 100 + (i % 50) / 10,
              t: Date.now(),
            }),
          });
          if (r.status !== 201 && r.status !== 200) throw new Error(`POST /v1/executions: ${r.status} ${await r.text()}`);
        }
      }),
    );

    // bystander first, so that it is connected before the flood
    const bystander = new WebSocket(`ws://${HOST}:${port}/v1/stream`, ['tickwire.v1.json'], { headers: { authorization: `Bearer ${await jwt('bystander')}` } });
    await new Promise<void>((ok, fail) => {
      bystander.once('open', () => ok());
      bystander.once('error', fail);
    });
    const sent = new Map<number, number>();
    const pingRtt = new LatencyHistogram();
    const healthRtt = new LatencyHistogram();
    let measuring = false;
    let pongs = 0;
    bystander.on('message', (data: Buffer) => {
      const f = JSON.parse(data.toString()) as { op: string; id?: number };
      if (f.op !== 'pong' || f.id === undefined) return;
      const at = sent.get(f.id);
      sent.delete(f.id);
      if (at !== undefined && measuring) {
        pingRtt.record(performance.now() - at);
        pongs++;
      }
    });

    log(`starting ${o.connections} connections that re-subscribe with since:0 every ${o.resubscribeMs} ms`);
    const load = fork(
      here,
      [
        '--role',
        'load',
        JSON.stringify({ url: `ws://${HOST}:${port}/v1/stream`, token: await jwt(USER), connections: o.connections, resubscribeMs: o.resubscribeMs }),
      ],
      {
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      },
    );
    children.add(load);
    const fromLoad = (type: string, timeoutMs = 60_000): Promise<any> =>
      new Promise((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`the load process did not send "${type}" within ${timeoutMs} ms`)), timeoutMs);
        const on = (m: any): void => {
          if (m?.type !== type) return;
          clearTimeout(timer);
          load.off('message', on);
          ok(m);
        };
        load.on('message', on);
        load.once('exit', (code) => fail(new Error(`load process exited (${code})`)));
      });
    await fromLoad('ready');
    await sleep(1000); // warm up: every connection is replaying

    const cpu0 = cpuMicros(server.pid!);
    const replayed0 = await metric(base, 'tickwire_replayed_events_total');
    load.send({ type: 'mark' });
    const mark0 = (await fromLoad('report')).report as LoadReport;
    measuring = true;
    const t0 = performance.now();
    let pingId = 0;
    const pinger = setInterval(() => {
      const id = ++pingId;
      sent.set(id, performance.now());
      bystander.send(JSON.stringify({ op: 'ping', id }));
    }, 25);
    let healthFails = 0;
    const healthLoop = (async () => {
      while (measuring) {
        const s = performance.now();
        const r = await fetch(`${base}/health`, { signal: AbortSignal.timeout(30_000) }).catch(() => undefined);
        if (r?.status === 200) {
          await r.text();
          healthRtt.record(performance.now() - s);
        } else healthFails++;
        await sleep(100);
      }
    })();
    await sleep(o.seconds * 1000);
    clearInterval(pinger);
    measuring = false;
    await healthLoop;
    const elapsed = (performance.now() - t0) / 1000;
    load.send({ type: 'mark' });
    const mark1 = (await fromLoad('report')).report as LoadReport;
    const replayed1 = await metric(base, 'tickwire_replayed_events_total');
    const cpu = (cpuMicros(server.pid!) - cpu0) / 1e6;
    const lost = sent.size;
    load.send({ type: 'stop' });
    await stopChild(load);
    bystander.terminate();
    const loadAfter = uptime();

    const events = mark1.events - mark0.events;
    const bytes = mark1.bytes - mark0.bytes;
    const rows: [string, string][] = [
      ['server', o.serverRoot === repoRoot ? 'this checkout' : o.serverRoot],
      [
        'setup',
        `${o.events} retained executions, ${o.connections} connections of one user re-subscribing with since:0 every ${o.resubscribeMs} ms, ${o.seconds} s measured`,
      ],
      [
        'bystander ping RTT p50 / p99 / max (ms)',
        `${fmt(pingRtt.quantile(0.5))} / ${fmt(pingRtt.quantile(0.99))} / ${fmt(pingRtt.max)} (${pongs} pongs, ${lost} unanswered at the end)`,
      ],
      [
        '/health RTT p50 / p99 / max (ms)',
        `${fmt(healthRtt.quantile(0.5))} / ${fmt(healthRtt.quantile(0.99))} / ${fmt(healthRtt.max)} (${healthRtt.total} answered, ${healthFails} failed)`,
      ],
      ['replayed events/s received by the load connections', (events / elapsed).toFixed(0)],
      [
        'replayed events/s (server, tickwire_replayed_events_total)',
        replayed0 !== undefined && replayed1 !== undefined ? ((replayed1 - replayed0) / elapsed).toFixed(0) : 'n/a (metric absent)',
      ],
      ['replay bytes/s received (MB/s)', (bytes / elapsed / 1e6).toFixed(2)],
      ['subscribes sent / closes by code', `${mark1.resubscribes - mark0.resubscribes} / ${JSON.stringify(mark1.closes)}`],
      ['server CPU (s per s)', (cpu / elapsed).toFixed(2)],
      ['uptime before', loadBefore],
      ['uptime after', loadAfter],
    ];
    process.stdout.write(`\n| measure | value |\n|---|---|\n${rows.map(([k, v]) => `| ${k} | ${v} |`).join('\n')}\n`);
  } finally {
    for (const c of [...children]) await stopChild(c);
  }
}

if (process.argv[2] === '--role' && process.argv[3] !== undefined) {
  process.argv.splice(2, 1);
  void loadMain().catch((err: unknown) => {
    process.stderr.write(`load process failed: ${String(err)}\n`);
    process.exit(1);
  });
} else {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`bench:replay failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
