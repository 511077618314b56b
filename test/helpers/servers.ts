import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Socket } from 'node:net';

/** A free TCP port on loopback (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`server on port ${port} did not come up within ${timeoutMs} ms`);
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

function managed(name: string, port: number, url: string, args: () => string[], cleanupDir?: string): TestServer {
  let child: ChildProcess | undefined;
  const server: TestServer = {
    url,
    port,
    get running() {
      return child !== undefined && child.exitCode === null;
    },
    async start() {
      if (server.running) return;
      const c = spawn(name, args(), { stdio: ['ignore', 'ignore', 'pipe'] });
      child = c;
      let stderr = '';
      c.stderr?.on('data', (d: Buffer) => {
        if (stderr.length < 4000) stderr += d.toString();
      });
      const exited = new Promise<never>((_, reject) =>
        c.once('exit', (code) => reject(new Error(`${name} exited with ${code}: ${stderr.slice(0, 500)}`))),
      );
      exited.catch(() => undefined);
      await Promise.race([waitForPort(port, 10_000), exited]);
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const done = new Promise<void>((resolve) => c.once('exit', () => resolve()));
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 3000);
      await done;
      clearTimeout(t);
      child = undefined;
    },
  };
  const origStop = server.stop;
  if (cleanupDir) {
    (server as { destroy?: () => Promise<void> }).destroy = async () => {
      await origStop();
      rmSync(cleanupDir, { recursive: true, force: true });
    };
  }
  return server;
}

/** Start nats-server (JetStream on by default) on a free loopback port. */
export async function startNats(opts: { jetstream?: boolean } = {}): Promise<TestServer & { destroy(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tw-nats-'));
  const server = managed('nats-server', port, `nats://127.0.0.1:${port}`, () => [
    '-a', '127.0.0.1', '-p', String(port), ...(opts.jetstream === false ? [] : ['-js', '-sd', dir]),
  ], dir) as TestServer & { destroy(): Promise<void> };
  await server.start();
  return server;
}

/** Start redis-server without persistence on a free loopback port. */
export async function startRedis(): Promise<TestServer & { destroy(): Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tw-redis-'));
  const server = managed('redis-server', port, `redis://127.0.0.1:${port}`, () => [
    '--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir,
  ], dir) as TestServer & { destroy(): Promise<void> };
  await server.start();
  return server;
}
