import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor, WaitAborted } from './wait.js';

/**
 * The one free-port helper, for the few servers that cannot bind port 0 and report the port
 * back: redis-server (`--port 0` turns TCP off), and a port that a test must reuse for a
 * restart. Everything else binds port 0 and reads the port back (an engine's `port`, the
 * nats-server ports file, the listening log line of a tickwire process).
 *
 * The port is drawn at random below the kernel's ephemeral range (where port-0 binds land),
 * reserved for this process and checked with an exclusive bind. A free port is not enough: a
 * server that a test kills and starts again on its ports (a cluster node) leaves them free
 * meanwhile, and another test process drew one of them (nats-server n2 of
 * test/faults/inbound-cluster.test.ts could not listen on its monitor port when started again).
 * uSockets binds explicit ports with SO_REUSEPORT, so two engines could even share one without
 * an error. So every port handed out is reserved across the suite's processes (a file named
 * after it in RESERVED holding the owner's pid, created exclusively) for as long as its process
 * lives: a reservation whose process is gone is taken over (so none is removed on exit).
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 15000 + Math.floor(Math.random() * 15000);
    if (!reservePort(port)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

const RESERVED = join(tmpdir(), 'tickwire-test-ports');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reserve `port` for this process; false when a live process (this one included) holds it. */
export function reservePort(port: number): boolean {
  const file = join(RESERVED, String(port));
  const claim = (): boolean => {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    return true;
  };
  mkdirSync(RESERVED, { recursive: true });
  if (claim()) return true;
  let owner = NaN;
  try {
    owner = Number(readFileSync(file, 'utf8'));
  } catch {
    // removed meanwhile: claimed below
  }
  if (owner > 0 && alive(owner)) return false;
  rmSync(file, { force: true }); // left by a process that is gone
  return claim();
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port. */
async function accepts(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

/** A real server process started for a test, on a free loopback port. */
export interface TestServer {
  readonly url: string;
  readonly port: number;
  /** stop the process (SIGTERM, then SIGKILL) */
  stop(): Promise<void>;
  /** start it again on the same port (state kept on disk where the server keeps any) */
  start(): Promise<void>;
  readonly running: boolean;
}

/**
 * A server process. `args(port)` builds its command line (port 0 / -1 on the first start when
 * `boundPort` can read the port the server chose); `ready` resolves with the bound port.
 */
function managed(
  name: string,
  scheme: string,
  args: (port: number) => string[],
  ready: (child: ChildProcess, port: number) => Promise<number>,
  firstPort: number,
  cleanupDir: string,
): TestServer & { destroy(): Promise<void> } {
  let child: ChildProcess | undefined;
  let port = firstPort;
  const server = {
    get url() {
      return `${scheme}://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get running() {
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async start() {
      if (server.running) return;
      const c = spawn(name, args(port), { stdio: ['ignore', 'ignore', 'pipe'] });
      child = c;
      let stderr = '';
      c.stderr?.on('data', (d: Buffer) => {
        if (stderr.length < 4000) stderr += d.toString();
      });
      let exited: string | undefined;
      c.once('exit', (code) => (exited = `${name} exited with ${code}: ${stderr.slice(0, 500)}`));
      const gone = (): void => {
        if (exited !== undefined) throw new WaitAborted(exited);
      };
      try {
        port = await ready(c, port);
      } catch (err) {
        gone(); // the exit says more than the timeout
        throw err;
      }
      // a restart must find the server where the test's clients were pointed
      await waitFor(async () => (gone(), accepts(port)), { what: `${name} to accept connections on ${port}`, timeout: 10_000, interval: 50 });
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const done = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
      child = undefined;
    },
    async destroy() {
      await server.stop();
      rmSync(cleanupDir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * Start nats-server (JetStream on by default) on loopback. The first start binds port -1 (the
 * server picks one) and the port is read from its ports file (`--ports_file_dir`); a restart
 * reuses that port.
 */
export async function startNats(opts: { jetstream?: boolean } = {}): Promise<TestServer & { destroy(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-nats-'));
  const portsDir = join(dir, 'ports');
  mkdirSync(portsDir);
  const server = managed(
    'nats-server',
    'nats',
    (port) => [
      '-a',
      '127.0.0.1',
      '-p',
      String(port === 0 ? -1 : port),
      '--ports_file_dir',
      portsDir,
      ...(opts.jetstream === false ? [] : ['-js', '-sd', join(dir, 'js')]),
    ],
    async (child) => {
      const file = join(portsDir, `nats-server_${child.pid}.ports`);
      const ports = await waitFor(() => existsSync(file) && (JSON.parse(readFileSync(file, 'utf8')) as { nats?: string[] }), {
        what: `nats-server's ports file ${file}`,
        timeout: 10_000,
      });
      const url = ports.nats?.[0];
      if (!url) throw new Error(`no client URL in ${file}: ${JSON.stringify(ports)} (${readdirSync(portsDir).join(', ')})`);
      return Number(new URL(url).port);
    },
    0,
    dir,
  );
  await server.start();
  return server;
}

/**
 * Start redis-server without persistence on loopback. Redis cannot bind port 0 (`--port 0`
 * turns TCP off), so this is the one server started on a probed free port; if another process
 * took the port meanwhile, redis exits and the start is retried on a new port.
 */
export async function startRedis(): Promise<TestServer & { destroy(): Promise<void> }> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'tw-redis-'));
    const server = managed(
      'redis-server',
      'redis',
      (port) => ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir],
      async (_child, port) => port,
      await freePort(),
      dir,
    );
    try {
      await server.start();
      return server;
    } catch (err) {
      lastErr = err;
      await server.destroy();
    }
  }
  throw lastErr;
}
