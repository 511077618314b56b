#!/usr/bin/env node
// `npm run cluster`: the scale-out deployment on one machine, in one command. On loopback it
// starts a three-node nats-server cluster (routes, JetStream), redis-server, `tickwire feed
// synthetic`, `tickwire gateway --workers 2` (two uWS event loops behind one port),
// `tickwire portfolio` and `tickwire alerts`, waits until the gateway is ready, prints the URLs, and on Ctrl-C (SIGINT)
// or SIGTERM stops every process it started and waits until each has exited.
//
// Usage: node scripts/cluster.mjs [--port N] [--workers N] [--source]
//   --port N     gateway port (default 8080; 0 picks a free one)
//   --workers N  gateway workers (default 2)
//   --source     run tickwire from src/ with tsx instead of dist/ (tests; no build needed)
// Needs nats-server and redis-server on the PATH (Debian: apt-get install nats-server redis-server).
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const USAGE = `usage: npm run cluster -- [--port N] [--workers N] [--source]
       node scripts/cluster.mjs [--port N] [--workers N] [--source]

Starts on loopback: three nats-server nodes (JetStream), redis-server, tickwire feed synthetic,
tickwire gateway with N workers on one port, tickwire portfolio, tickwire alerts; prints the URLs;
Ctrl-C stops all.

  --port N     gateway port (default $PORT or 8080; 0 picks a free one)
  --workers N  gateway workers (default 2)
  --source     run tickwire from src/ with tsx instead of dist/ (no build needed)`;

/** Arguments are checked before anything starts: a mistake exits 2 naming it, with the usage. */
function usageError(message) {
  console.error(`cluster: ${message}\n\n${USAGE}`);
  process.exit(2);
}
const argv = process.argv.slice(2);
const given = {};
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--help' || a === '-h') {
    console.log(USAGE);
    process.exit(0);
  } else if (a === '--source') given.source = true;
  else if (a === '--port' || a === '--workers') {
    if (argv[i + 1] === undefined) usageError(`${a} needs a value`);
    given[a.slice(2)] = argv[++i];
  } else usageError(`unknown option ${a}`);
}
const fromSource = given.source === true;
const rawPort = given.port ?? process.env.PORT ?? '8080';
const wantPort = Number(rawPort);
if (!/^\d+$/.test(rawPort) || wantPort > 65535) usageError(`--port: "${rawPort}" is not a port (0 to 65535; 0 picks a free one)`);
const rawWorkers = given.workers ?? '2';
const workers = Number(rawWorkers);
if (!/^\d+$/.test(rawWorkers) || workers < 1 || workers > 256) usageError(`--workers: "${rawWorkers}" is not a number of workers (1 to 256)`);

for (const bin of ['nats-server', 'redis-server']) {
  if (spawnSync(bin, ['--version'], { stdio: 'ignore' }).error) {
    console.error(`cluster: ${bin} is not installed (Debian: apt-get install nats-server redis-server)`);
    process.exit(2);
  }
}

/** Ports handed out by this script: each is given once. */
const handedOut = new Set();

/**
 * A free loopback port, never one this script handed out before. Drawn at random below the
 * kernel's ephemeral range and checked with an exclusive bind: a port-0 bind lands in that range,
 * where the kernel may give a port just released to the next bind (a CI run once had n1's
 * monitor and route ports on the same number) or to another process's outgoing connection.
 */
async function freePort() {
  for (;;) {
    const port = 15000 + Math.floor(Math.random() * 15000);
    if (handedOut.has(port)) continue;
    const ok = await new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (ok) {
      handedOut.add(port);
      return port;
    }
  }
}

function portTaken(port) {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

const dir = mkdtempSync(join(tmpdir(), 'tickwire-cluster-'));
/** every process started here, in start order */
const procs = [];
let stopping = false;

function start(name, cmd, args, env = {}) {
  const child = spawn(cmd, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const p = { name, child, log: '' };
  const collect = (d) => {
    if (p.log.length < 50_000) p.log += d.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  child.once('exit', (code, signal) => {
    if (!stopping) {
      console.error(`cluster: ${name} exited (${signal ?? code}) unexpectedly; its last output:\n${p.log.slice(-2000)}`);
      void stop(1);
    }
  });
  procs.push(p);
  return p;
}

async function waitFor(what, cond, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (stopping) throw new Error('stopping');
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const exited = (c) => c.exitCode !== null || c.signalCode !== null;

/** Stop everything, tickwire processes first (they flush to NATS and Redis), then the servers. */
async function stop(code) {
  if (stopping) return;
  stopping = true;
  const tickwire = procs.filter((p) => p.name.startsWith('tickwire'));
  const servers = procs.filter((p) => !p.name.startsWith('tickwire'));
  for (const group of [tickwire.reverse(), servers.reverse()]) {
    await Promise.all(
      group.map(({ child }) => {
        if (exited(child)) return undefined;
        const done = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
        return done.then(() => clearTimeout(t));
      }),
    );
  }
  rmSync(dir, { recursive: true, force: true });
  console.log(`cluster: stopped ${procs.length} processes (${procs.map((p) => `${p.name} ${p.child.pid}`).join(', ')})`);
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function main() {
  // a gateway port in use is found before any server is started (checked again when it is bound)
  if (wantPort !== 0 && (await portTaken(wantPort))) {
    console.error(`cluster: port ${wantPort} is in use: pass --port N (0 picks a free one)`);
    process.exit(2);
  }
  // NATS: three nodes, each with a client, a route and a monitoring port; JetStream on each
  const nats = [];
  for (let i = 1; i <= 3; i++) nats.push({ name: `n${i}`, port: await freePort(), cluster: await freePort(), monitor: await freePort() });
  const routes = nats.map((n) => `nats-route://127.0.0.1:${n.cluster}`);
  for (const n of nats) {
    mkdirSync(join(dir, n.name));
    const file = join(dir, `${n.name}.conf`);
    // the same shape as docs/operations.md ("Clustered NATS")
    writeFileSync(
      file,
      `server_name: ${n.name}\nlisten: 127.0.0.1:${n.port}\nhttp: 127.0.0.1:${n.monitor}\njetstream {\n  store_dir: "${join(dir, n.name)}"\n}\ncluster {\n  name: tickwire\n  listen: 127.0.0.1:${n.cluster}\n  routes: [\n    ${routes.join('\n    ')}\n  ]\n}\n`,
    );
    start(`nats-server ${n.name}`, 'nats-server', ['-c', file]);
  }
  const redisPort = await freePort();
  mkdirSync(join(dir, 'redis'));
  start('redis-server', 'redis-server', ['--bind', '127.0.0.1', '--port', String(redisPort), '--save', '', '--appendonly', 'no', '--dir', join(dir, 'redis')]);

  await waitFor('the NATS cluster to form', async () => {
    for (const n of nats) {
      const routez = await (await fetch(`http://127.0.0.1:${n.monitor}/routez`)).json();
      if ((routez.routes ?? []).length < nats.length - 1) return false;
      const jsz = await (await fetch(`http://127.0.0.1:${n.monitor}/jsz`)).json();
      if (!jsz.meta_cluster?.leader) return false;
    }
    return true;
  });
  await waitFor('redis-server', () => portTaken(redisPort));

  const port = wantPort === 0 ? await freePort() : wantPort;
  if (await portTaken(port)) throw new Error(`port ${port} is in use: pass --port N (0 picks a free one)`);
  const feedOps = await freePort();
  const portfolioOps = await freePort();
  const alertsOps = await freePort();
  const serviceToken = process.env.TICKWIRE_SERVICE_TOKEN ?? process.env.TICKWIRE_AUTH_SERVICE_TOKEN ?? randomBytes(18).toString('base64url');
  const env = {
    NATS_URL: nats.map((n) => `nats://127.0.0.1:${n.port}`).join(','),
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    TICKWIRE_SERVICE_TOKEN: serviceToken,
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? process.env.TICKWIRE_LOG_LEVEL ?? 'warn',
    // the keys' own variables, when the shell has them, would set the same keys to other values:
    // tickwire refuses a key set twice differently (spawn leaves out undefined variables)
    TICKWIRE_NATS_URL: undefined,
    TICKWIRE_REDIS_URL: undefined,
    TICKWIRE_AUTH_SERVICE_TOKEN: undefined,
    TICKWIRE_HOST: undefined,
    TICKWIRE_LOG_LEVEL: undefined,
    TICKWIRE_PORT: undefined,
  };
  const tickwire = fromSource ? [process.execPath, ['--import', 'tsx', 'src/cli/main.ts']] : [process.execPath, ['dist/src/cli/main.js']];
  const tw = (name, args, extra = {}) => start(`tickwire ${name}`, tickwire[0], [...tickwire[1], ...args], { ...env, ...extra });
  // gateways first: they create the JetStream streams of the executions
  tw('gateway', ['gateway', '--workers', String(workers)], { PORT: String(port) });
  tw('portfolio', ['portfolio', `--ops.port=${portfolioOps}`]);
  // without it every alert request (service API, in-band alert.*) is answered ALERTS_UNAVAILABLE
  tw('alerts', ['alerts', `--ops.port=${alertsOps}`]);
  tw('feed synthetic', ['feed', 'synthetic', `--ops.port=${feedOps}`]);

  const http = `http://127.0.0.1:${port}`;
  await waitFor('the gateway to be ready', async () => (await fetch(`${http}/ready`)).status === 200, 120_000);
  // every worker up, not just the one that answered /ready
  await waitFor(
    `all ${workers} gateway workers running`,
    async () => ((await (await fetch(`${http}/health`)).json()).workers?.running ?? 1) >= workers,
    120_000,
  );
  await waitFor(
    'the feed to report on the bus',
    async () => ((await (await fetch(`${http}/health`)).json()).feeds ?? []).some((f) => f.state === 'connected'),
    60_000,
  );

  const urls = {
    stream: `ws://127.0.0.1:${port}/v1/stream`,
    dashboard: `${http}/`,
    admin: `${http}/admin`,
    health: `${http}/health`,
    stats: `${http}/v1/stats`,
    nats: env.NATS_URL,
    natsMonitor: nats.map((n) => `http://127.0.0.1:${n.monitor}`).join(','),
    redis: env.REDIS_URL,
    feedOps: `http://127.0.0.1:${feedOps}/health`,
    portfolioOps: `http://127.0.0.1:${portfolioOps}/health`,
    alertsOps: `http://127.0.0.1:${alertsOps}/health`,
  };
  console.log(`tickwire cluster on loopback (${procs.length} processes, gateway with ${workers} workers):
  stream      ${urls.stream}
  dashboard   ${urls.dashboard}
  admin       ${urls.admin}   (service token: ${serviceToken})
  health      ${urls.health}
  stats       ${urls.stats}
  NATS        ${urls.nats}   (monitoring ${urls.natsMonitor})
  Redis       ${urls.redis}
  feed        ${urls.feedOps}
  portfolio   ${urls.portfolioOps}
  alerts      ${urls.alertsOps}
Ctrl-C stops everything.`);
  // one machine-readable line (tests read it)
  console.log(`cluster ready ${JSON.stringify({ urls, serviceToken, pids: procs.map((p) => ({ name: p.name, pid: p.child.pid })) })}`);
}

main().catch((err) => {
  if (stopping) return;
  console.error(`cluster: ${err instanceof Error ? err.message : String(err)}`);
  for (const p of procs) if (p.log.trim()) console.error(`--- ${p.name}:\n${p.log.slice(-1500)}`);
  void stop(1);
});
