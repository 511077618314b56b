/**
 * Results of one run and their markdown rendering: a table per scenario, the ratios between
 * servers, and each target marked met or not met from the measured numbers.
 */
import { SERVER_LABEL, type ServerKind } from './shared.js';
import type { FanoutScenario, Options, Scenario } from './scenarios.js';

export interface FanoutResult {
  server: ServerKind;
  connected: number;
  failed: number;
  rejectedChannels: number;
  /** measured ticks published and the rate achieved */
  published: number;
  publishRate: number;
  /** updates owed to clients: every measured tick times its subscribers */
  expected: number;
  /** measured updates delivered (phase-tagged) */
  delivered: number;
  /** every update decoded within the measured window, warm-up backlog included */
  received: number;
  clientCpuMicros: number;
  /** publisher + nats-server */
  feedCpuMicros: number;
  /** machine-wide CPU busy fraction over the window */
  boxBusy: number;
  foreign: number;
  serverErrors: number;
  frames: number;
  bytes: number;
  /** socket reads by the load clients in the window (about one per server write when they keep up) */
  reads: number;
  /** event-loop delay over the window, ms: the load client threads (worst) and the server */
  clientLoopP99Ms: number;
  clientLoopMaxMs: number;
  serverLoopP99Ms?: number;
  serverLoopMaxMs?: number;
  /**
   * with BENCH_COUNT_WRITES=1 (needs `perf`): the gateway's sendto() calls, i.e. socket writes,
   * over `serverWritesMs` of the measured phase
   */
  serverWrites?: number;
  serverWritesMs?: number;
  /** from the first measured tick to the last update decoded */
  windowMs: number;
  /** time from the last tick published to the last update decoded */
  drainMs: number;
  drained: boolean;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
  cpuMicros: number;
  /** the system (kernel) part of cpuMicros */
  cpuSystemMicros: number;
  /** CPU used by processes other than this benchmark's during the window (other work on the box) */
  otherCpuMicros: number;
  /** wall time the CPU counters covered */
  cpuWindowMs: number;
  /** machine busy fraction just before publishing, and how long we waited for quiet */
  quietBusy?: number;
  quietWaitMs: number;
  rssConnected: number;
  rssPeak: number;
  skipped: number;
  stale: number;
  badFrames: number;
  finalOk: number;
  finalTotal: number;
  negative: number;
  unexpectedCloses: Record<string, number>;
  error?: string;
  /** all runs of this server when repeated (the row shows the median one) */
  runs?: FanoutResult[];
}

export interface IdleResult {
  server: ServerKind;
  connected: number;
  failed: number;
  rssBefore: number;
  rssAfterFirst: number;
  rssAfter: number;
  firstBatch: number;
  error?: string;
  runs?: IdleResult[];
}

export interface ScenarioResult {
  scenario: Scenario;
  fanout: FanoutResult[];
  idle: IdleResult[];
}

export interface RunInfo {
  startedAt: Date;
  elapsedMs: number;
  node: string;
  cpus: string;
  cores: number;
  memGiB: number;
  loadProcesses: string;
  options: Options;
  engineCommand: string;
  /** how this run was started */
  command: string;
}

const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const fix = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '–');
const mb = (b: number): string => (Number.isFinite(b) ? (b / 1048576).toFixed(1) : '–');
const pct = (n: number): string => (Number.isFinite(n) ? (n * 100).toFixed(n >= 0.9995 && n < 1 ? 2 : 1) + '%' : '–');
const mark = (ok: boolean | undefined): string => (ok === undefined ? '⚪ not measured' : ok ? '✅ met' : '❌ not met');

export const perSecond = (r: FanoutResult, n: number): number => (r.windowMs > 0 ? (n * 1000) / r.windowMs : NaN);
/** CPU and throughput are per update decoded in the window (a saturated server's backlog included). */
export const cpuPerUpdate = (r: FanoutResult): number => (r.received > 0 ? r.cpuMicros / r.received : NaN);
export const updatesPerCpuSecond = (r: FanoutResult): number => (r.cpuMicros > 0 ? r.received / (r.cpuMicros / 1e6) : NaN);

function fanoutTable(rows: FanoutResult[]): string[] {
  const tw = rows.find((r) => r.server === 'tickwire');
  const twCpu = tw ? cpuPerUpdate(tw) : NaN;
  const out = [
    '| server | clients | delivered upd/s | frames/s | delivered / owed | p50 ms | p99 ms | p99.9 ms | max ms | gateway CPU µs/upd | upd per CPU-s | CPU/upd vs tickwire | RSS MB (connected / peak) | box CPU busy | client CPU µs/upd |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.error) {
      out.push(`| ${SERVER_LABEL[r.server]} | ${int(r.connected)} | failed: ${r.error.replace(/\|/g, '/').slice(0, 160)} ||||||||||||`);
      continue;
    }
    const rel = cpuPerUpdate(r) / twCpu;
    out.push(
      `| ${SERVER_LABEL[r.server]} | ${int(r.connected)}${r.failed ? ` (${int(r.failed)} failed)` : ''} | ${int(perSecond(r, r.received))} | ${int(perSecond(r, r.frames))} | ` +
        `${pct(r.delivered / r.expected)}${r.drained ? '' : ' (not drained)'} | ${fix(r.p50)} | ${fix(r.p99)} | ${fix(r.p999)} | ${fix(r.max, 1)} | ` +
        `${fix(cpuPerUpdate(r), 3)} | ${int(updatesPerCpuSecond(r))} | ${r.server === 'tickwire' ? '1.00×' : fix(rel) + '×'} | ${mb(r.rssConnected)} / ${mb(r.rssPeak)} | ` +
        `${pct(r.boxBusy)} | ${fix(r.clientCpuMicros / r.received, 2)} |`,
    );
  }
  return out;
}

function fanoutNotes(s: FanoutScenario, rows: FanoutResult[]): string[] {
  const out: string[] = [];
  const first = rows.find((r) => !r.error);
  if (first) {
    out.push(
      `Measured ${int(first.published)} ticks over ${fix(s.durationMs / 1000, 1)} s (achieved ${int(first.publishRate)} ticks/s) after ${fix(s.warmupMs / 1000, 1)} s of warm-up; ` +
        `owed updates = measured ticks × subscribers of their symbol (${int(first.expected)}).`,
    );
  }
  for (const r of rows) {
    const bits: string[] = [];
    if (r.error) continue;
    if (r.runs && r.runs.length > 1) {
      const ok = r.runs.filter((x) => !x.error);
      bits.push(
        `${r.runs.length} runs (row = median CPU/upd): CPU/upd ${ok.map((x) => fix(cpuPerUpdate(x), 2)).join(', ')} µs; ` +
          `p99 ${ok.map((x) => fix(x.p99, 1)).join(', ')} ms; delivered ${ok.map((x) => pct(x.delivered / x.expected)).join(', ')}` +
          (ok.length < r.runs.length ? `; ${r.runs.length - ok.length} failed` : ''),
      );
    }
    if (r.quietBusy !== undefined)
      bits.push(
        `machine ${pct(r.quietBusy)} busy before the run${r.quietWaitMs > 500 ? ` (waited ${fix(r.quietWaitMs / 1000, 0)} s for it to calm down)` : ''}`,
      );
    if (r.delivered === 0)
      bits.push(
        `no measured update arrived: the server was still working through the warm-up backlog; throughput and CPU cover the warm-up updates it delivered in the window`,
      );
    if (!r.drained) bits.push(`still delivering ${fix(s.drainTimeoutMs / 1000, 0)} s after the last tick (drain limit), figures cover what arrived`);
    else if (r.drainMs > 50) bits.push(`drain after the last tick ${int(r.drainMs)} ms`);
    if (r.skipped) bits.push(`${int(r.skipped)} updates skipped (sequence jumps${s.throttle > 0 && r.server === 'tickwire' ? ': conflation' : ''})`);
    if (r.foreign) bits.push(`${int(r.foreign)} updates on channels not subscribed`);
    if (r.serverErrors) bits.push(`${int(r.serverErrors)} error frames`);
    if (r.rejectedChannels) bits.push(`${int(r.rejectedChannels)} channels rejected`);
    if (r.stale) bits.push(`${int(r.stale)} duplicate/out-of-order updates`);
    if (r.badFrames) bits.push(`${int(r.badFrames)} undecodable frames`);
    if (r.negative) bits.push(`${int(r.negative)} negative latencies clamped to 0`);
    const closes = Object.entries(r.unexpectedCloses);
    if (closes.length) bits.push(`connections closed by the server: ${closes.map(([c, n]) => `${n}× ${c}`).join(', ')}`);
    if (r.finalTotal) bits.push(`last value delivered on ${pct(r.finalOk / r.finalTotal)} of (client, channel) pairs`);
    bits.push(
      `gateway CPU ${fix(r.cpuMicros / r.cpuWindowMs / 10, 0)}% of a core (${fix((r.cpuMicros - r.cpuSystemMicros) / r.received, 2)} µs user + ${fix(r.cpuSystemMicros / r.received, 2)} µs kernel per update)`,
    );
    bits.push(
      `load clients ${fix(r.clientCpuMicros / r.cpuWindowMs / 10, 0)}%, publisher + NATS ${fix(r.feedCpuMicros / r.cpuWindowMs / 10, 0)}%, softirq and other processes ${fix(Math.max(0, r.otherCpuMicros) / r.cpuWindowMs / 10, 0)}% of a core`,
    );
    bits.push(`${mb(perSecond(r, r.bytes))} MB/s of frames`);
    if (r.serverWrites !== undefined && r.serverWritesMs && r.connected > 0)
      bits.push(`${fix(r.serverWrites / r.connected / (r.serverWritesMs / 1000), 1)} gateway socket writes per client per s (perf)`);
    if (r.reads > 0 && r.connected > 0) bits.push(`${fix(perSecond(r, r.reads) / r.connected, 1)} socket reads per client per s`);
    // where latency beyond the throttle goes: a long server turn (a burst written to many
    // sockets) or a load client thread busy reading others' frames delays every socket behind it
    bits.push(
      `event-loop delay p99 / max: gateway ${r.serverLoopP99Ms === undefined ? 'n/a' : `${fix(r.serverLoopP99Ms, 1)} / ${fix(r.serverLoopMaxMs ?? NaN, 1)}`} ms, ` +
        `load clients ${fix(r.clientLoopP99Ms, 1)} / ${fix(r.clientLoopMaxMs, 1)} ms`,
    );
    out.push(`- ${SERVER_LABEL[r.server]}: ${bits.join('; ')}.`);
  }
  return out;
}

function fanoutTargets(s: FanoutScenario, rows: FanoutResult[]): string[] {
  const get = (k: ServerKind): FanoutResult | undefined => rows.find((r) => r.server === k && !r.error);
  const tw = get('tickwire');
  const uws = get('uws');
  const sio = get('socketio');
  const lines: string[] = [];
  if (s.throttle === 0) {
    const twRuns = tw ? (tw.runs ?? [tw]).filter((x) => !x.error) : [];
    const all = tw ? twRuns.every((x) => x.delivered === x.expected && x.skipped === 0) : undefined;
    lines.push(
      `- every update delivered: ${mark(all)}` +
        (tw ? ` (${twRuns.map((x) => `${int(x.delivered)} of ${int(x.expected)}, ${int(x.skipped)} skipped`).join('; ')})` : ''),
    );
    lines.push(`- p99 ≤ 10 ms: ${mark(tw ? tw.p99 <= 10 : undefined)}${tw ? ` (${fix(tw.p99)} ms)` : ''}`);
    const vsUws = tw && uws ? cpuPerUpdate(tw) / cpuPerUpdate(uws) : NaN;
    lines.push(
      `- gateway CPU per delivered update within 1.25× of raw uWS: ${mark(Number.isFinite(vsUws) ? vsUws <= 1.25 : undefined)}` +
        (Number.isFinite(vsUws) ? ` (${fix(vsUws)}×: ${fix(cpuPerUpdate(tw!), 3)} vs ${fix(cpuPerUpdate(uws!), 3)} µs)` : ''),
    );
    const vsSio = tw && sio ? cpuPerUpdate(sio) / cpuPerUpdate(tw) : NaN;
    lines.push(
      `- ≥ 3× cheaper than Socket.IO: ${mark(Number.isFinite(vsSio) ? vsSio >= 3 : undefined)}` +
        (Number.isFinite(vsSio) ? ` (${fix(vsSio)}×: ${fix(cpuPerUpdate(sio!), 3)} vs ${fix(cpuPerUpdate(tw!), 3)} µs)` : ''),
    );
  } else {
    const ratio = tw && sio ? updatesPerCpuSecond(tw) / updatesPerCpuSecond(sio) : NaN;
    lines.push(
      `- delivered updates per gateway CPU second ≥ 10× Socket.IO unthrottled: ${mark(Number.isFinite(ratio) ? ratio >= 10 : undefined)}` +
        (Number.isFinite(ratio) ? ` (${fix(ratio, 1)}×: ${int(updatesPerCpuSecond(tw!))} vs ${int(updatesPerCpuSecond(sio!))})` : ''),
    );
    lines.push(`- p99 < throttle + 20 ms (${s.throttle + 20} ms): ${mark(tw ? tw.p99 < s.throttle + 20 : undefined)}${tw ? ` (${fix(tw.p99)} ms)` : ''}`);
    if (tw) {
      lines.push(
        `- (check) conflation keeps the latest value: last published value delivered on ${pct(tw.finalOk / tw.finalTotal)} of (client, channel) pairs; ` +
          `${pct(tw.delivered / tw.expected)} of raw updates delivered, the rest conflated`,
      );
    }
  }
  return lines;
}

/** The run with the median CPU per update (failed runs only if all failed), with every run attached. */
export function representativeFanout(runs: FanoutResult[]): FanoutResult {
  const ok = runs.filter((r) => !r.error);
  if (ok.length === 0) return { ...runs[0]!, runs };
  const sorted = [...ok].sort((a, b) => (cpuPerUpdate(a) || Infinity) - (cpuPerUpdate(b) || Infinity));
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, runs };
}

export function representativeIdle(runs: IdleResult[]): IdleResult {
  const ok = runs.filter((r) => !r.error);
  if (ok.length === 0) return { ...runs[0]!, runs };
  const sorted = [...ok].sort((a, b) => perConn(a) - perConn(b));
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, runs };
}

const perConn = (r: IdleResult): number => (r.connected > 0 ? (r.rssAfter - r.rssBefore) / r.connected : NaN);
const marginal = (r: IdleResult): number => (r.connected > r.firstBatch ? (r.rssAfter - r.rssAfterFirst) / (r.connected - r.firstBatch) : NaN);

function idleTable(rows: IdleResult[]): string[] {
  const out = [
    '| server | connected | RSS before MB | RSS after MB | RSS delta per connection | marginal per connection (last 90%) |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.error) {
      out.push(`| ${SERVER_LABEL[r.server]} | ${int(r.connected)} | failed: ${r.error.replace(/\|/g, '/').slice(0, 160)} ||||`);
      continue;
    }
    out.push(
      `| ${SERVER_LABEL[r.server]} | ${int(r.connected)}${r.failed ? ` (${int(r.failed)} failed)` : ''} | ${mb(r.rssBefore)} | ${mb(r.rssAfter)} | ` +
        `${fix(perConn(r) / 1024, 2)} KB | ${fix(marginal(r) / 1024, 2)} KB |`,
    );
  }
  const tw = rows.find((r) => r.server === 'tickwire' && !r.error);
  out.push(
    '',
    `- gateway RSS delta per idle connection ≤ 5 KB: ${mark(tw ? perConn(tw) <= 5 * 1024 : undefined)}${tw ? ` (${fix(perConn(tw) / 1024, 2)} KB)` : ''}`,
  );
  return out;
}

export function renderMarkdown(info: RunInfo, results: ScenarioResult[]): string {
  const o = info.options;
  const lines: string[] = [
    `# tickwire fan-out benchmark${o.quick ? ' (quick smoke run)' : o.label ? ` (${o.label})` : ''}`,
    '',
    `${info.startedAt.toISOString()} · ${info.cpus}, ${info.cores} cores, ${fix(info.memGiB, 0)} GiB · Node ${info.node} · ` +
      `${fix(info.elapsedMs / 1000, 0)} s in total · \`${info.command}\``,
    '',
    `Loopback only; load generator, NATS, publisher and server share the machine. Each server runs alone in its own ` +
      `process, fed the same seeded quote stream from NATS; load clients are raw-socket WebSocket clients in ${info.loadProcesses}. ` +
      `**delivered upd/s**: updates decoded by the clients per second over the measured window (first measured tick to last update). ` +
      `**Latency**: tick creation (publisher wall clock) to client decode (client wall clock), measured ticks only. ` +
      `**Gateway CPU**: utime+stime of the server process (/proc) over the window, per update decoded in it. ` +
      `**box CPU busy**: the whole machine over the window; near 100% means the numbers describe a saturated box. ` +
      (o.serverCpus || o.loadCpus
        ? `Pinned with taskset: servers on CPUs ${o.serverCpus ?? 'any'}, load clients + publisher + NATS on CPUs ${o.loadCpus ?? 'any'}. `
        : '') +
      (o.repeat > 1 ? `Each row is the run with the median CPU per update out of ${o.repeat} interleaved runs. ` : '') +
      `tickwire gateway: \`${info.engineCommand}\`.`,
    '',
  ];
  for (const r of results) {
    const s = r.scenario;
    lines.push(`## Scenario ${s.id}: ${s.title}`, '');
    if (s.kind === 'fanout') {
      lines.push(...fanoutTable(r.fanout), '', ...fanoutNotes(s, r.fanout), '', '**Targets**', '', ...fanoutTargets(s, r.fanout), '');
    } else {
      lines.push(...idleTable(r.idle), '');
    }
  }
  return lines.join('\n');
}
