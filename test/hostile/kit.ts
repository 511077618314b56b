import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/servers.js';
import { spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';

/** A `tickwire start` process under attack: its health, memory and metrics, from outside. */
export interface Target {
  readonly port: number;
  readonly proc: TickwireProcess;
  /** resident memory of the engine process now, bytes (Linux /proc) */
  rss(): number;
  /** GET /health status (0 when it did not answer) */
  health(): Promise<number>;
  stats(): Promise<Record<string, any>>;
  /** one series of a Prometheus counter, e.g. metric('tickwire_protocol_errors_total', { code: 'BAD_FRAME' }) */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

/** `env`: more environment for the process (e.g. LOG_LEVEL, which the spawn sets to warn). */
export async function startTarget(config: Record<string, unknown>, env: Record<string, string> = {}): Promise<Target> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tw-hostile-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ host: '127.0.0.1', port, log: { level: 'warn' }, ops: { statsLogSec: 0 }, ...config }));
  const proc = spawnTickwire(['start'], { TICKWIRE_CONFIG: file, ...env });
  try {
    await waitHttpOk(`http://127.0.0.1:${port}/health`, 60_000, proc);
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
  const base = `http://127.0.0.1:${port}`;
  return {
    port,
    proc,
    rss() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.child.pid}/status`, 'utf8'));
      return Number(m?.[1] ?? 0) * 1024;
    },
    async health() {
      try {
        return (await fetch(`${base}/health`, { signal: AbortSignal.timeout(5000) })).status;
      } catch {
        return 0;
      }
    },
    async stats() {
      return (await (await fetch(`${base}/v1/stats`)).json()) as Record<string, any>;
    },
    async metric(name, labels = {}) {
      return metricValue(await (await fetch(`${base}/metrics`)).text(), name, labels);
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Sum of the series of a Prometheus metric whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.eE+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

export interface RawHttpResult {
  /** status code of the response (0: none) */
  status: number;
  head: string;
  body: string;
  /** the server closed the TCP connection */
  closed: boolean;
  /** ms from the write to the close (when closed) */
  closedAfterMs: number | undefined;
}

/** Write raw bytes to the server and collect what comes back for `waitMs` (or until it closes). */
export async function rawHttp(
  port: number,
  data: string | Buffer | ((write: (b: string | Buffer) => void, closed: () => boolean) => Promise<void>),
  opts: { waitMs?: number; localAddress?: string } = {},
): Promise<RawHttpResult> {
  const s = connect({ port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
  let out = Buffer.alloc(0);
  let closedAt: number | undefined;
  let complete: () => void = () => undefined;
  const responded = new Promise<void>((resolve) => (complete = resolve));
  s.on('data', (d: Buffer) => {
    out = Buffer.concat([out, d]);
    // a whole response (headers and Content-Length bytes of body) ends the wait early
    const text = out.toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    const len = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, end));
    if (end >= 0 && len && out.length >= end + 4 + Number(len[1])) complete();
  });
  let isClosed = false;
  const closed = new Promise<void>((resolve) =>
    s.once('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  s.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  const t0 = Date.now();
  // a response ends the wait at once; the bound only matters on a loaded machine
  const waitMs = opts.waitMs ?? 10_000;
  const until = Promise.race([closed.then(() => (closedAt = Date.now() - t0)), responded, new Promise((r) => setTimeout(r, waitMs))]);
  if (typeof data === 'function')
    await data(
      (b) => void (isClosed || s.write(b)),
      () => isClosed,
    );
  else s.write(data);
  await until;
  s.destroy();
  const text = out.toString('latin1');
  const i = text.indexOf('\r\n\r\n');
  const head = i >= 0 ? text.slice(0, i) : text;
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
  return { status, head, body: i >= 0 ? text.slice(i + 4) : '', closed: closedAt !== undefined, closedAfterMs: closedAt };
}

/** An upgrade request with the given extra header lines. */
export function upgradeRequest(extra: string[] = [], opts: { path?: string; version?: string | null; key?: string | null; method?: string } = {}): string {
  const lines = [
    `${opts.method ?? 'GET'} ${opts.path ?? '/v1/stream'} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Upgrade: websocket',
    'Connection: Upgrade',
    ...(opts.key === null ? [] : [`Sec-WebSocket-Key: ${opts.key ?? 'dGhlIHNhbXBsZSBub25jZQ=='}`]),
    ...(opts.version === null ? [] : [`Sec-WebSocket-Version: ${opts.version ?? '13'}`]),
    ...extra,
  ];
  return lines.join('\r\n') + '\r\n\r\n';
}

let nextAddress = 10;
/** A loopback source address of its own (127.0.0.N), so per-IP connection limits apply per test. */
export function freshAddress(): string {
  nextAddress++;
  return `127.0.${Math.floor(nextAddress / 250)}.${(nextAddress % 250) + 2}`;
}
