import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { freePort, startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A small tickwire deployment of real processes on loopback, for fault tests and the soak run:
 * nats-server (JetStream, on disk), redis-server, `tickwire feed synthetic` and `tickwire
 * gateway` processes, each with its own config file, each restartable on the same port.
 */
export const JWT_SECRET = 'fault-suite-jwt-secret-0123456789abcdef';
export const SERVICE_TOKEN = 'fault-suite-service-token-0123';

export type Server = TestServer & { destroy(): Promise<void> };

/** One tickwire process that can be killed and started again with the same configuration. */
export class Role {
  proc: TickwireProcess | undefined;
  /** output of earlier runs of this role (the current run's is in proc.output()) */
  earlier = '';
  constructor(
    readonly name: string,
    readonly args: string[],
    readonly configFile: string,
    readonly port: number | undefined,
  ) {}

  get running(): boolean {
    return this.proc !== undefined && this.proc.child.exitCode === null && this.proc.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.proc?.child.pid : undefined;
  }

  output(): string {
    return this.earlier + (this.proc?.output() ?? '');
  }

  async start(): Promise<void> {
    if (this.running) return;
    if (this.proc) this.earlier += this.proc.output();
    this.proc = spawnTickwire(this.args, { TICKWIRE_CONFIG: this.configFile, LOG_LEVEL: 'warn' });
    if (this.port) await waitHttpOk(`http://127.0.0.1:${this.port}/health`, 60_000, this.proc);
  }

  /** SIGKILL (a crash) or SIGTERM (a graceful stop); resolves when the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    await this.proc!.stop(signal);
  }
}

export interface ClusterOptions {
  gateways: number;
  synthetic: { rate: number; seed: number; symbols?: string[] };
  /** extra configuration for every process */
  config?: Record<string, unknown>;
}

export class Cluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'tw-cluster-'));
  readonly gateways: Role[] = [];
  feed!: Role;
  private constructor(
    readonly nats: Server,
    readonly redis: Server,
    readonly opts: ClusterOptions,
  ) {}

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const [nats, redis] = await Promise.all([startNats(), startRedis()]);
    const c = new Cluster(nats, redis, opts);
    try {
      c.feed = c.#role('feed', ['feed', 'synthetic'], { synthetic: opts.synthetic }, undefined);
      for (let i = 0; i < opts.gateways; i++) {
        // a probed port, not 0: a gateway is restarted on the same port, where its clients reconnect
        const port = await freePort();
        c.gateways.push(c.#role(`gateway-${i}`, ['gateway'], { port }, port));
      }
      // gateways first: they create the JetStream streams for executions
      await Promise.all(c.gateways.map((g) => g.start()));
      await c.feed.start();
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  #role(name: string, args: string[], config: Record<string, unknown>, port: number | undefined): Role {
    const file = join(this.dir, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        natsUrl: this.nats.url,
        redisUrl: this.redis.url,
        host: '127.0.0.1',
        ops: { statsLogSec: 0 },
        redis: { keyPrefix: 'fault:' },
        auth: { mode: 'required', jwtSecret: JWT_SECRET, serviceToken: SERVICE_TOKEN },
        ...this.opts.config,
        ...config,
      }),
    );
    return new Role(name, args, file, port);
  }

  url(i = 0): string {
    return `ws://127.0.0.1:${this.gateways[i]!.port}/v1/stream`;
  }

  http(i = 0): string {
    return `http://127.0.0.1:${this.gateways[i]!.port}`;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.gateways.map((g) => g.stop('SIGTERM')), this.feed?.stop('SIGTERM')]);
    await Promise.allSettled([this.nats.destroy(), this.redis.destroy()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export function userToken(sub: string, ttl = '2h'): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime(ttl).sign(new TextEncoder().encode(JWT_SECRET));
}

export interface ExecutionBody {
  user: string;
  id: string;
  order: string;
  sym: string;
  side: 'buy' | 'sell';
  qty: number;
  p: number;
  t: number;
}

/**
 * POST /v1/executions the way an order system must: retry (same id) until the engine answers 2xx;
 * a repeated id is recognised as a duplicate. Returns the seq and how many attempts it took.
 */
export async function postExecution(
  base: string | (() => string),
  body: ExecutionBody,
  opts: { timeoutMs?: number } = {},
): Promise<{ seq: number; attempts: number; duplicate: boolean }> {
  let attempts = 0;
  let last = '';
  const post = async (): Promise<{ seq: number; attempts: number; duplicate: boolean } | undefined> => {
    attempts++;
    try {
      const url = typeof base === 'function' ? base() : base;
      const res = await fetch(`${url}/v1/executions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      if (res.status === 200 || res.status === 201) {
        const r = JSON.parse(text) as { seq: number; duplicate: boolean };
        return { seq: r.seq, attempts, duplicate: r.duplicate };
      }
      last = `${res.status} ${text.slice(0, 200)}`;
    } catch (err) {
      last = String(err);
    }
    return undefined;
  };
  // an order system's retry every 250 ms, until a 2xx
  return waitFor(post, { what: `a 2xx to POST /v1/executions ${body.id}`, timeout: opts.timeoutMs ?? 60_000, interval: 250 }).catch((err: Error) => {
    throw new Error(`${err.message}: no 2xx after ${attempts} attempts; last: ${last}`);
  });
}

/** Resident memory of a process, bytes (Linux); 0 when it is not running. */
export function rssOf(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** pino error/fatal lines (level >= 50) in a process's output */
export function errorLines(output: string): string[] {
  return output.split('\n').filter((l) => /"level":(5\d|60)\b/.test(l));
}
