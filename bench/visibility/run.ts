/**
 * Visibility benchmark (docs/benchmarks.md#visibility-driven-rates): a dashboard that watches
 * 200 symbols (quote + ticker each, throttle 100 ms) and shows 20 of them. Measures, on the same
 * connections one after the other, what the gateway sends and the CPU it spends when
 *   0. no dashboard is subscribed yet (the feed and the engine alone: the baseline CPU),
 *   1. every subscription is marked on screen (what a client without visibility gets),
 *   2. 20 symbols on screen, 180 off screen (op visibility, throttle.offscreenMs = 1000),
 *   3-4. the same two again (alternated, so that a drifting machine load shows),
 *   5. the page hidden (latest-value channels paused).
 * "Serving CPU" is a row's gateway CPU less the baseline's: what serving the dashboards costs.
 * Bytes are counted as the clients receive them (WebSocket payloads); gateway CPU is user +
 * system time of the gateway process from /proc over the window. Prints a markdown table and
 * the machine load (`uptime`) before and after.
 *
 *   npm run bench:visibility [-- --clients 20 --seconds 15 --rate 4000 --quick]
 */
import { execFileSync, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { cpuMicros } from '../fanout/proc-stats.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const num = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const CLIENTS = num('clients', quick ? 4 : 10);
const SECONDS = num('seconds', quick ? 4 : 15);
const RATE = num('rate', 4000);
const SYMBOLS = 200;
const ON_SCREEN = 20;
const THROTTLE = 100;
const WARMUP_MS = quick ? 1500 : 3000;

const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const symbols = Array.from({ length: SYMBOLS }, (_, i) => `S${String(i).padStart(3, '0')}`);
const channelsOf = (syms: readonly string[]): string[] => syms.flatMap((s) => [`quote:${s}`, `ticker:${s}`]);
const offScreen = channelsOf(symbols.slice(ON_SCREEN));

interface Dash {
  ws: WebSocket;
  bytes: number;
  frames: number;
  nextId: number;
  acks: Map<number, () => void>;
}

/** Send a request and wait for its ack (JSON subprotocol so the client can read acks cheaply). */
function request(d: Dash, frame: Record<string, unknown>): Promise<void> {
  const id = d.nextId++;
  return new Promise((resolve) => {
    d.acks.set(id, resolve);
    d.ws.send(JSON.stringify({ ...frame, id }));
  });
}

async function connect(port: number): Promise<Dash> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, 'tickwire.v1.json');
  const d: Dash = { ws, bytes: 0, frames: 0, nextId: 1, acks: new Map() };
  ws.on('message', (data: Buffer) => {
    d.bytes += data.byteLength;
    d.frames++;
    // only acks are parsed (they start with their op); data frames are only counted
    if (data.toString('latin1', 0, 12) === '{"op":"ack",') {
      const id = (JSON.parse(data.toString('utf8')) as { id?: number }).id;
      if (id !== undefined) d.acks.get(id)?.();
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return d;
}

interface Row {
  name: string;
  bytesPerSec: number;
  framesPerSec: number;
  cpuPct: number;
  /** slow-consumer pauses during the row: the load clients could not keep up (figures then understate the all-on-screen cost) */
  slowEpisodes: number;
  /** gateway CPU less the baseline row's (percent of one core) */
  servingPct?: number;
  /** bytes the gateway handed to uWS for these sockets (hub.bytesOut), per second */
  sentPerSec: number;
  /** updates the gateway took from the bus per second (the feed's output reaching the hub) */
  inPerSec: number;
}

let statsUrl = '';
async function gatewayStats(): Promise<{ slow: number; bytesOut: number; updatesIn: number }> {
  const s = (await (await fetch(statsUrl)).json()) as { gateway: { slowEpisodes: number }; hub: { bytesOut: number; updatesIn: number } };
  return { slow: s.gateway.slowEpisodes, bytesOut: s.hub.bytesOut, updatesIn: s.hub.updatesIn };
}

async function measure(name: string, dashes: Dash[], pid: number): Promise<Row> {
  await sleep(WARMUP_MS);
  for (const d of dashes) d.bytes = d.frames = 0;
  const s0 = await gatewayStats();
  const cpu0 = cpuMicros(pid);
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const wallMs = performance.now() - t0;
  const cpu = cpuMicros(pid) - cpu0;
  const bytes = dashes.reduce((a, d) => a + d.bytes, 0);
  const frames = dashes.reduce((a, d) => a + d.frames, 0);
  const s1 = await gatewayStats();
  return {
    slowEpisodes: s1.slow - s0.slow,
    sentPerSec: ((s1.bytesOut - s0.bytesOut) * 1000) / wallMs,
    inPerSec: ((s1.updatesIn - s0.updatesIn) * 1000) / wallMs,
    name,
    bytesPerSec: (bytes * 1000) / wallMs,
    framesPerSec: (frames * 1000) / wallMs,
    cpuPct: (cpu / 1000 / wallMs) * 100,
  };
}

const child = fork(fileURLToPath(new URL('./engine.ts', import.meta.url)), ['--symbols', String(SYMBOLS), '--rate', String(RATE)], {
  execArgv: ['--import', 'tsx'],
  stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
});
const stop = (): void => {
  if (child.exitCode === null) child.kill('SIGTERM');
};
process.on('SIGINT', () => {
  stop();
  process.exit(130);
});

try {
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
  });
  const pid = child.pid!;
  statsUrl = `http://127.0.0.1:${port}/v1/stats`;
  const loadBefore = uptime();
  const dashes = await Promise.all(Array.from({ length: CLIENTS }, () => connect(port)));
  // the baseline: connected, nothing subscribed (the synthetic feed runs for every symbol anyway)
  const baseline = await measure('baseline: connected, nothing subscribed', dashes, pid);
  await Promise.all(dashes.map((d) => request(d, { op: 'subscribe', channels: channelsOf(symbols), throttle: THROTTLE })));

  const allOn = `all ${SYMBOLS} on screen (no visibility)`;
  const some = `${ON_SCREEN} on screen, ${SYMBOLS - ON_SCREEN} off screen`;
  const rows: Row[] = [];
  for (let round = 0; round < 2; round++) {
    rows.push(await measure(allOn, dashes, pid));
    await Promise.all(dashes.map((d) => request(d, { op: 'visibility', channels: offScreen, visible: false })));
    rows.push(await measure(some, dashes, pid));
    await Promise.all(dashes.map((d) => request(d, { op: 'visibility', channels: offScreen, visible: true })));
  }
  await Promise.all(dashes.map((d) => request(d, { op: 'visibility', page: 'hidden' })));
  rows.push(await measure('page hidden', dashes, pid));
  const loadAfter = uptime();
  for (const d of dashes) d.ws.close();
  for (const r of rows) r.servingPct = r.cpuPct - baseline.cpuPct;

  const mean = (name: string, f: (r: Row) => number): number => {
    const xs = rows.filter((r) => r.name === name).map(f);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  const base = mean(allOn, (r) => r.sentPerSec);
  const baseServing = mean(allOn, (r) => r.servingPct!);
  const kb = (b: number): string => (b / 1024).toFixed(1);
  const saved = (v: number, b: number): string => `${(100 * (1 - v / b)).toFixed(1)}%`;
  console.log(
    `\nVisibility benchmark: ${CLIENTS} dashboards x ${SYMBOLS} symbols (quote + ticker, throttle ${THROTTLE} ms), ${ON_SCREEN} on screen; synthetic feed ${RATE} ticks/s; ${SECONDS} s per row after ${WARMUP_MS} ms warm-up\n`,
  );
  console.log(
    '| dashboard state | hub updates in/s | KiB/s published | KiB/s received | frames/s received | gateway CPU | serving CPU | bandwidth saved | serving CPU saved | slow episodes |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  console.log(`| ${baseline.name} | — | — | — | — | ${baseline.cpuPct.toFixed(1)}% | — | — | — | — |`);
  for (const r of rows) {
    const isBase = r.name === allOn;
    console.log(
      `| ${r.name} | ${r.inPerSec.toFixed(0)} | ${kb(r.sentPerSec)} | ${kb(r.bytesPerSec)} | ${r.framesPerSec.toFixed(0)} | ${r.cpuPct.toFixed(1)}% | ${r.servingPct!.toFixed(1)}% | ${isBase ? '—' : saved(r.sentPerSec, base)} | ${isBase ? '—' : saved(r.servingPct!, baseServing)} | ${r.slowEpisodes} |`,
    );
  }
  console.log(
    `\nmeans: ${some}: bandwidth saved ${saved(
      mean(some, (r) => r.sentPerSec),
      base,
    )}, serving CPU saved ${saved(
      mean(some, (r) => r.servingPct!),
      baseServing,
    )}; page hidden: bandwidth saved ${saved(
      mean('page hidden', (r) => r.sentPerSec),
      base,
    )}, serving CPU saved ${saved(
      mean('page hidden', (r) => r.servingPct!),
      baseServing,
    )}`,
  );
  console.log(
    `\n(CPU in percent of one core; savings against the mean of the all-on-screen rows; "published" is what the gateway handed to uWS for these sockets (hub bytesOut), "received" what the clients read; gateway CPU includes the synthetic feed and derived tickers, which run whatever the clients show; slow episodes > 0 mean the load clients fell behind; "hub updates in/s" far below the feed's rate (quotes and trades, plus the tickers derived from them) means the machine starved the gateway and its feed, and the row says little)`,
  );
  console.log(`load before: ${loadBefore}\nload after:  ${loadAfter}`);
} finally {
  stop();
}
