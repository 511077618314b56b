/**
 * Definitions shared by the fan-out benchmark's processes: the servers under test, how clients
 * are assigned to symbols, and the messages the orchestrator, load processes, workers and the
 * publisher exchange over IPC.
 */
import { performance } from 'node:perf_hooks';

/** The four servers measured on the same work. */
export type ServerKind = 'tickwire' | 'uws' | 'ws' | 'socketio';
export const SERVER_KINDS: readonly ServerKind[] = ['tickwire', 'uws', 'ws', 'socketio'];

export const SERVER_LABEL: Readonly<Record<ServerKind, string>> = {
  tickwire: 'tickwire gateway',
  uws: 'raw uWS publish (ceiling)',
  ws: 'naive ws + JSON',
  socketio: 'Socket.IO rooms',
};

/** Asset class and channel kind of every benchmark instrument. */
export const BENCH_ASSET_CLASS = 'stock' as const;
export const BENCH_SOURCE = 'bench';

/** Symbols are S0000, S0001, ...: canonical, no subject escaping needed. */
export function symbolName(i: number): string {
  return 'S' + String(i).padStart(4, '0');
}

export function channelOf(symbolIndex: number): string {
  return 'quote:' + symbolName(symbolIndex);
}

/**
 * Client c subscribes to K consecutive symbols starting at (c*K) mod M. When N*K is a multiple of M
 * every symbol has exactly N*K/M subscribers; otherwise counts differ by at most one.
 */
export function firstSymbolOf(client: number, k: number, m: number): number {
  return (client * k) % m;
}

export function subscribersPerSymbol(clients: number, k: number, m: number): Int32Array {
  const subs = new Int32Array(m);
  for (let c = 0; c < clients; c++) {
    const first = firstSymbolOf(c, k, m);
    for (let j = 0; j < k; j++) subs[(first + j) % m]!++;
  }
  return subs;
}

/** Wall-clock milliseconds with microsecond resolution; the same clock in every process. */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Phase tag carried in the quote's ask size (`as`): only measured ticks are counted. */
export const PHASE_WARMUP = 1;
export const PHASE_MEASURED = 2;

/** Where and how a load client reaches one server under test. */
export interface Target {
  kind: ServerKind;
  host: string;
  port: number;
}

export interface ConnectSpec {
  target: Target;
  /** global index of the first client of this batch */
  firstClient: number;
  count: number;
  /** symbols per client (K) and symbols in total (M) */
  k: number;
  m: number;
  throttle: number;
  /** false: idle connections (handshake only, no subscription) */
  subscribe: boolean;
  /** connection attempts in flight per worker */
  concurrency: number;
  timeoutMs: number;
  /** decode frames fully (msgpackr / JSON.parse) instead of the field readers */
  fullDecode: boolean;
}

export interface ConnectResult {
  ok: number;
  failed: number;
  rejectedChannels: number;
  errors: string[];
}

export interface LoadStats {
  /** measured updates delivered so far */
  delivered: number;
  /** all updates decoded so far, warm-up included */
  received: number;
  frames: number;
  /** wall ms of the latest measured update */
  lastRecvMs: number;
  open: number;
  closed: number;
  /** socket reads so far (every connection; a proxy for the server's socket writes) */
  reads: number;
  /**
   * event-loop delay of the load client threads since the last `mark` (ms, the worst thread):
   * how long a socket with data could wait for its client to read it
   */
  loopP99Ms: number;
  loopMaxMs: number;
}

export interface LoadReport extends LoadStats {
  bytes: number;
  /** updates skipped by the server (sequence jumps); conflation when throttled */
  skipped: number;
  /** updates at or below a sequence already seen (duplicates, reordering) */
  stale: number;
  /** (client, channel) pairs whose last received value is the last one published */
  finalOk: number;
  finalTotal: number;
  /** frames the client could not decode */
  badFrames: number;
  /** updates for channels the connection did not subscribe to */
  foreign: number;
  /** error frames from the server after subscribing */
  serverErrors: number;
  /** latencies below zero (clock skew between processes), clamped to 0 */
  negative: number;
  /** sparse latency histogram: [bucket, count, bucket, count, ...] */
  hist: number[];
  latencyMax: number;
  latencySum: number;
  closeCodes: Record<string, number>;
}

export type WorkerCommand =
  { type: 'connect'; spec: ConnectSpec } | { type: 'stats'; mark?: boolean } | { type: 'report'; finalSeq: number[] } | { type: 'close'; timeoutMs: number };

export type WorkerReply =
  | { type: 'connected'; result: ConnectResult }
  | { type: 'stats'; stats: LoadStats }
  | { type: 'report'; report: LoadReport }
  | { type: 'closed' }
  | { type: 'fatal'; message: string };

export type PublisherCommand = {
  type: 'start';
  rate: number;
  symbols: number;
  warmupMs: number;
  durationMs: number;
  seed: number;
};

export type PublisherReply =
  | { type: 'ready' }
  | { type: 'measuring'; atMs: number }
  | {
      type: 'done';
      atMs: number;
      /** measured ticks per symbol */
      measured: number[];
      /** last sequence published per symbol (warm-up included) */
      finalSeq: number[];
      sent: number;
      measuredRate: number;
    }
  | { type: 'fatal'; message: string };

/** Orchestrator -> load process: the same commands, `id` matched on the reply. */
export type LoadCommand = WorkerCommand & { id: number };
export type LoadReply = (WorkerReply | { type: 'ready' }) & { id?: number };
