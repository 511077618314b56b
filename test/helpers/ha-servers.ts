import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './servers.js';
import { waitFor } from './wait.js';

/**
 * Highly available test deployments of real servers on loopback: a three-node nats-server
 * cluster with JetStream, and Redis with a replica watched by three Redis Sentinels. Every
 * process can be SIGKILLed and started again on the same ports. docs/operations.md ("Clustered
 * NATS", "Redis Sentinel") shows the same configuration for production.
 */

/** A server process that can be killed and started again with the same arguments. */
export class Proc {
  child: ChildProcess | undefined;
  log = '';
  constructor(
    readonly name: string,
    readonly cmd: string,
    readonly args: string[],
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(): void {
    if (this.running) return;
    const c = spawn(this.cmd, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = c;
    const collect = (d: Buffer): void => {
      if (this.log.length < 100_000) this.log += d.toString();
    };
    c.stdout?.on('data', collect);
    c.stderr?.on('data', collect);
  }

  /** SIGKILL (a crash) by default; resolves when the process is gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const c = this.child;
    if (!c || !this.running) return;
    const done = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill(signal);
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(t);
  }
}

async function httpJson(url: string): Promise<any> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

export interface NatsNode {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  readonly monitor: number;
  readonly proc: Proc;
}

/**
 * Three nats-server processes in one cluster (routes to each other), JetStream on each with its
 * own store directory and server_name (JetStream clustering needs unique names).
 */
export class NatsCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'tw-natscluster-'));
  readonly nodes: NatsNode[] = [];

  static async start(size = 3): Promise<NatsCluster> {
    const c = new NatsCluster();
    const ports = await Promise.all(Array.from({ length: size * 3 }, () => freePort()));
    const routes = Array.from({ length: size }, (_, i) => `nats-route://127.0.0.1:${ports[i * 3 + 1]}`);
    for (let i = 0; i < size; i++) {
      const name = `n${i + 1}`;
      const [port, clusterPort, monitor] = [ports[i * 3]!, ports[i * 3 + 1]!, ports[i * 3 + 2]!];
      mkdirSync(join(c.dir, name));
      const file = join(c.dir, `${name}.conf`);
      writeFileSync(file, natsNodeConfig({ name, port, clusterPort, monitor, storeDir: join(c.dir, name), routes }));
      c.nodes.push({ name, port, url: `nats://127.0.0.1:${port}`, monitor, proc: new Proc(name, 'nats-server', ['-c', file]) });
    }
    for (const n of c.nodes) n.proc.start();
    try {
      await c.waitFormed();
    } catch (err) {
      await c.destroy();
      throw err;
    }
    return c;
  }

  /** every node's client URL, comma separated: what NATS_URL gets */
  get urls(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  node(name: string): NatsNode {
    const n = this.nodes.find((x) => x.name === name || x.url.endsWith(`:${name}`));
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** The node whose client port is `port` (what NatsConnection.getServer() names). */
  byPort(port: number): NatsNode {
    const n = this.nodes.find((x) => x.port === port);
    if (!n) throw new Error(`no node on port ${port}`);
    return n;
  }

  /** Every running node has routes to the others and JetStream has a meta leader all of them know. */
  async waitFormed(timeoutMs = 30_000): Promise<void> {
    const up = this.nodes.filter((n) => n.proc.running);
    const view = async (): Promise<string> => {
      const rows: string[] = [];
      for (const n of up) {
        const routez = await httpJson(`http://127.0.0.1:${n.monitor}/routez`).catch((e: Error) => ({ routes: [], err: e.message }));
        const jsz = await httpJson(`http://127.0.0.1:${n.monitor}/jsz`).catch(() => ({}));
        rows.push(`${n.name}: ${routez.routes?.length ?? 0} routes${routez.err ? ` (${routez.err})` : ''}, meta leader ${jsz.meta_cluster?.leader ?? '-'}`);
      }
      return rows.join('; ');
    };
    await waitFor(
      async () => {
        for (const n of up) {
          const routez = await httpJson(`http://127.0.0.1:${n.monitor}/routez`);
          const peers = new Set((routez.routes as { remote_id: string }[]).map((r) => r.remote_id));
          if (peers.size < up.length - 1) return false;
          const jsz = await httpJson(`http://127.0.0.1:${n.monitor}/jsz`);
          if (!jsz.meta_cluster?.leader) return false;
        }
        return true;
      },
      { what: 'the NATS cluster to form (routes, JetStream meta leader)', timeout: timeoutMs },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${await view()}; last log lines of each node: ${up.map((n) => `${n.name}: ${n.proc.log.slice(-300)}`).join(' | ')}`);
    });
  }

  /** Name of the node leading a stream (from /jsz of a running node). */
  async streamLeader(stream: string): Promise<string | undefined> {
    for (const n of this.nodes.filter((x) => x.proc.running)) {
      try {
        const jsz = await httpJson(`http://127.0.0.1:${n.monitor}/jsz?streams=true`);
        for (const acc of jsz.account_details ?? []) {
          for (const s of acc.stream_detail ?? []) if (s.name === stream && s.cluster?.leader) return s.cluster.leader as string;
        }
      } catch {
        // next node
      }
    }
    return undefined;
  }

  /** Name of the node leading a durable consumer of a stream (from /jsz of a running node). */
  async consumerLeader(stream: string, consumer: string): Promise<string | undefined> {
    for (const n of this.nodes.filter((x) => x.proc.running)) {
      try {
        const jsz = await httpJson(`http://127.0.0.1:${n.monitor}/jsz?consumers=true`);
        for (const acc of jsz.account_details ?? []) {
          for (const s of acc.stream_detail ?? []) {
            if (s.name !== stream) continue;
            for (const c of s.consumer_detail ?? []) if (c.name === consumer && c.cluster?.leader) return c.cluster.leader as string;
          }
        }
      } catch {
        // next node
      }
    }
    return undefined;
  }

  /** A stream has a leader and every replica on a running node is current. */
  async waitStreamHealthy(stream: string, replicas: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const n of this.nodes.filter((x) => x.proc.running)) {
          const jsz = await httpJson(`http://127.0.0.1:${n.monitor}/jsz?streams=true`);
          for (const acc of jsz.account_details ?? []) {
            for (const s of acc.stream_detail ?? []) {
              if (s.name !== stream || !s.cluster?.leader) continue;
              const reps = (s.cluster.replicas ?? []) as { current: boolean; offline?: boolean }[];
              if (reps.length === replicas - 1 && reps.every((r) => r.current && !r.offline)) return true;
            }
          }
        }
        return false;
      },
      { what: `stream ${stream} to have a leader and ${replicas - 1} current replicas`, timeout: timeoutMs },
    );
  }

  async destroy(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.proc.kill('SIGTERM')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The nats-server configuration of one cluster node (the shape docs/operations.md shows). */
export function natsNodeConfig(o: { name: string; port: number; clusterPort: number; monitor: number; storeDir: string; routes: string[] }): string {
  return `server_name: ${o.name}
listen: 127.0.0.1:${o.port}
http: 127.0.0.1:${o.monitor}
jetstream {
  store_dir: "${o.storeDir}"
}
cluster {
  name: tickwire
  listen: 127.0.0.1:${o.clusterPort}
  routes: [
    ${o.routes.join('\n    ')}
  ]
}
`;
}

export interface RedisNode {
  readonly port: number;
  readonly proc: Proc;
}

/**
 * A Redis primary, one replica and three Sentinels (quorum 2) watching them, on loopback.
 * `downAfterMs` is the sentinels' down-after-milliseconds (how long a primary may not answer
 * before it is considered down); Redis's default is 30 s, tests use 1 s.
 */
export class RedisSentinelSet {
  readonly dir = mkdtempSync(join(tmpdir(), 'tw-sentinel-'));
  readonly data: RedisNode[] = [];
  readonly sentinels: RedisNode[] = [];
  readonly masterName = 'tickwire';

  static async start(opts: { downAfterMs?: number; failoverTimeoutMs?: number } = {}): Promise<RedisSentinelSet> {
    const s = new RedisSentinelSet();
    try {
      const [p1, p2, s1, s2, s3] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
      for (const [i, port] of [p1!, p2!].entries()) {
        const dir = join(s.dir, `redis-${i}`);
        mkdirSync(dir);
        const args = ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir];
        if (i === 1) args.push('--replicaof', '127.0.0.1', String(p1));
        s.data.push({ port, proc: new Proc(`redis-${i}`, 'redis-server', args) });
      }
      for (const [i, port] of [s1!, s2!, s3!].entries()) {
        // a sentinel rewrites its config file (it records what it learns): one file each
        const file = join(s.dir, `sentinel-${i}.conf`);
        writeFileSync(
          file,
          sentinelConfig({
            port,
            masterName: s.masterName,
            masterPort: p1!,
            quorum: 2,
            downAfterMs: opts.downAfterMs ?? 1000,
            failoverTimeoutMs: opts.failoverTimeoutMs ?? 10_000,
            dir: s.dir,
          }),
        );
        s.sentinels.push({ port, proc: new Proc(`sentinel-${i}`, 'redis-sentinel', [file]) });
      }
      for (const n of s.data) n.proc.start();
      await waitFor(async () => /master_link_status:up/.test(await s.info(p2!, 'replication')), {
        what: 'the replica to sync with the primary',
        timeout: 30_000,
      });
      for (const n of s.sentinels) n.proc.start();
      await s.waitSentinelsAgree(p1!);
    } catch (err) {
      await s.destroy();
      throw err;
    }
    return s;
  }

  /** redisUrl for tickwire: every sentinel and the master name */
  get url(): string {
    return `redis+sentinel://${this.sentinels.map((n) => `127.0.0.1:${n.port}`).join(',')}/${this.masterName}`;
  }

  async info(port: number, section: string): Promise<string> {
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return await r.info(section);
    } finally {
      r.disconnect();
    }
  }

  /** What a sentinel says about the master: its port, the replicas and other sentinels it knows. */
  async sentinelView(port: number): Promise<{ masterPort: number; replicas: number; sentinels: number; flags: string }> {
    const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      const flat = (await r.call('SENTINEL', 'MASTER', this.masterName)) as string[];
      const m: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) m[flat[i]!] = flat[i + 1]!;
      return { masterPort: Number(m.port), replicas: Number(m['num-slaves']), sentinels: Number(m['num-other-sentinels']) + 1, flags: m.flags ?? '' };
    } finally {
      r.disconnect();
    }
  }

  /** Every running sentinel names `masterPort` as the primary, knows a replica and the other sentinels. */
  async waitSentinelsAgree(masterPort: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      async () => {
        for (const s of this.sentinels.filter((x) => x.proc.running)) {
          const v = await this.sentinelView(s.port);
          if (v.masterPort !== masterPort || v.replicas < 1 || v.sentinels < this.sentinels.length || /o_down|s_down/.test(v.flags)) return false;
        }
        return true;
      },
      { what: `the sentinels to agree that 127.0.0.1:${masterPort} is the primary`, timeout: timeoutMs },
    );
  }

  /** Whether any running sentinel is in TILT mode (it takes no action then: 30 s by default). */
  async inTilt(): Promise<boolean> {
    for (const s of this.sentinels.filter((x) => x.proc.running)) {
      if (/sentinel_tilt:1/.test(await this.info(s.port, 'sentinel').catch(() => ''))) return true;
    }
    return false;
  }

  /**
   * Waits until the data node on `port` is a replica with its link up: the sentinels turn a
   * restarted old primary into a replica at their own pace (INFO every 10 s, then 8 s of it
   * reporting the master role). A sentinel that sees its timer late by 2 s (a loaded host) enters
   * TILT and takes no action for 30 s: the time spent in TILT is added to `timeoutMs`. On a
   * timeout, the sentinels' own logs say what they were doing.
   */
  async waitReplica(port: number, timeoutMs: number): Promise<void> {
    const start = Date.now();
    let tiltMs = 0;
    let lastPoll = start;
    for (;;) {
      if (/role:slave[\s\S]*master_link_status:up/.test(await this.info(port, 'replication').catch(() => ''))) return;
      const now = Date.now();
      if (await this.inTilt()) tiltMs += now - lastPoll;
      lastPoll = now;
      if (now - start > timeoutMs + tiltMs) break;
      await new Promise((r) => setTimeout(r, 250)); // poll interval of the condition above
    }
    const logs = this.sentinels.map((x) => `${x.proc.name}:\n${x.proc.log.split('\n').slice(-15).join('\n')}`).join('\n');
    throw new Error(`timed out after ${Date.now() - start} ms (${tiltMs} ms of it in TILT) waiting for 127.0.0.1:${port} to be a replica\n${logs}`);
  }

  /** The data node that currently reports role:master. */
  async primary(): Promise<RedisNode> {
    for (const n of this.data.filter((x) => x.proc.running)) {
      if (/role:master/.test(await this.info(n.port, 'replication'))) return n;
    }
    throw new Error('no running Redis primary');
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.data].map((n) => n.proc.kill('SIGTERM')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One sentinel's configuration (the shape docs/operations.md shows). */
export function sentinelConfig(o: {
  port: number;
  masterName: string;
  masterPort: number;
  quorum: number;
  downAfterMs: number;
  failoverTimeoutMs: number;
  dir: string;
}): string {
  return `port ${o.port}
bind 127.0.0.1
daemonize no
dir ${o.dir}
sentinel monitor ${o.masterName} 127.0.0.1 ${o.masterPort} ${o.quorum}
sentinel down-after-milliseconds ${o.masterName} ${o.downAfterMs}
sentinel failover-timeout ${o.masterName} ${o.failoverTimeoutMs}
sentinel parallel-syncs ${o.masterName} 1
`;
}
