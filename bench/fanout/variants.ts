/**
 * `run.ts --variants`: tickwire gateways with different throttle settings (or checkouts, such as
 * the burst flush) compared in one run, on the same tick stream and load clients, rounds
 * interleaved (A B C A B C ...) so that a noisy spell on a shared machine hits every variant.
 * Each figure is printed next to the machine's load average at the start of its run and the
 * box's busy share during it, and CPU per update is also given as a ratio to the first variant of
 * the same round: on a box shared with other work, ratios within a round are the steady figure.
 */
import type { FanoutResult } from './report.js';
import type { FanoutScenario, GatewayVariant } from './scenarios.js';

export interface VariantRun {
  variant: GatewayVariant;
  round: number;
  /** `uptime` just before the run */
  uptime: string;
  result: FanoutResult;
}

const fix = (n: number, d: number): string => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const median = (xs: number[]): number => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
/** The 1-minute load average out of an `uptime` line. */
export const load1 = (uptime: string): string => /load average:\s*([\d.]+)/.exec(uptime)?.[1] ?? '?';
const cpuPerUpdate = (r: FanoutResult): number => (r.received > 0 ? r.cpuMicros / r.received : NaN);
const writesPerClient = (r: FanoutResult): number =>
  r.serverWrites !== undefined && r.serverWritesMs && r.connected > 0 ? r.serverWrites / r.connected / (r.serverWritesMs / 1000) : NaN;
const readsPerClient = (r: FanoutResult): number =>
  r.reads > 0 && r.connected > 0 && r.cpuWindowMs > 0 ? r.reads / r.connected / (r.cpuWindowMs / 1000) : NaN;

export function describeVariant(v: GatewayVariant): string {
  const bits: string[] = [];
  if (v.batchMs !== undefined) bits.push(`batchMs ${v.batchMs}`);
  if (v.lanes !== undefined) bits.push(`${v.lanes} lane${v.lanes > 1 ? 's' : ''}`);
  if (v.workers !== undefined) bits.push(`${v.workers} gateway worker${v.workers > 1 ? 's' : ''}`);
  if (v.root !== undefined) bits.push(`gateway from ${v.root}`);
  return bits.length ? bits.join(', ') : 'the gateway defaults';
}

export function renderVariants(
  meta: { startedAt: Date; elapsedMs: number; node: string; cpus: string; cores: number; command: string },
  s: FanoutScenario,
  variants: readonly GatewayVariant[],
  runs: readonly VariantRun[],
): string {
  const out: string[] = [];
  out.push(`# tickwire throttle variants, scenario ${s.id}`);
  out.push('');
  out.push(
    `${meta.startedAt.toISOString()} · ${meta.cpus}, ${meta.cores} cores · Node ${meta.node} · ${Math.round(meta.elapsedMs / 1000)} s in total · \`${meta.command}\``,
  );
  out.push('');
  out.push(
    `${s.clients.toLocaleString('en-US')} clients × ${s.perClient} of ${s.symbols} symbols, ${s.rate.toLocaleString('en-US')} ticks/s, throttle ${s.throttle} ms; ` +
      `variants: ${variants.map((v) => `\`${v.label}\` (${describeVariant(v)})`).join(', ')}. ` +
      'Rounds interleaved; "vs first" is the ratio to the first variant in the same round. "load" is the 1-minute load average just before the run, ' +
      '"box busy" the whole machine during it: latency means little when the box is near 100% busy. ' +
      'Gateway socket writes are counted with `perf stat` (sendto calls) when BENCH_COUNT_WRITES=1, else n/a.',
  );
  out.push('');
  out.push(
    '| variant | round | load | box busy | gateway CPU µs/upd (user + kernel) | vs first | p50 ms | p99 ms | gateway socket writes per client per s | socket reads per client per s | gateway loop delay p99 ms | client CPU µs/upd |',
  );
  out.push('|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|');
  const first = variants[0]!;
  const ratio = (run: VariantRun): number => {
    const ref = runs.find((x) => x.round === run.round && x.variant === first);
    return ref ? cpuPerUpdate(run.result) / cpuPerUpdate(ref.result) : NaN;
  };
  for (const run of runs) {
    const r = run.result;
    const cpu = cpuPerUpdate(r);
    out.push(
      `| \`${run.variant.label}\` | ${run.round} | ${load1(run.uptime)} | ${fix(r.boxBusy * 100, 0)}% | ` +
        `${r.error ? `failed: ${r.error}` : `${fix(cpu, 3)} (${fix((r.cpuMicros - r.cpuSystemMicros) / r.received, 2)} + ${fix(r.cpuSystemMicros / r.received, 2)})`} | ` +
        `${fix(ratio(run), 2)}× | ${fix(r.p50, 1)} | ${fix(r.p99, 1)} | ${fix(writesPerClient(r), 1)} | ${fix(readsPerClient(r), 1)} | ${fix(r.serverLoopP99Ms ?? NaN, 1)} | ${fix(r.clientCpuMicros / r.received, 2)} |`,
    );
  }
  out.push('');
  out.push('**Medians over the rounds**');
  out.push('');
  out.push(
    "| variant | gateway CPU µs/upd | vs first (median of the rounds' ratios) | p50 ms | p99 ms | gateway socket writes per client per s | socket reads per client per s | load (range) | box busy (range) |",
  );
  out.push('|---|---:|---:|---:|---:|---:|---:|---|---|');
  for (const v of variants) {
    const mine = runs.filter((x) => x.variant === v && !x.result.error);
    const loads = mine.map((x) => Number(load1(x.uptime))).filter(Number.isFinite);
    const busy = mine.map((x) => x.result.boxBusy * 100);
    out.push(
      `| \`${v.label}\` | ${fix(median(mine.map((x) => cpuPerUpdate(x.result))), 3)} | ${fix(median(mine.map(ratio)), 2)}× | ` +
        `${fix(median(mine.map((x) => x.result.p50)), 1)} | ${fix(median(mine.map((x) => x.result.p99)), 1)} | ${fix(median(mine.map((x) => writesPerClient(x.result))), 1)} | ${fix(median(mine.map((x) => readsPerClient(x.result))), 1)} | ` +
        `${loads.length ? `${Math.min(...loads)}-${Math.max(...loads)}` : 'n/a'} | ${busy.length ? `${fix(Math.min(...busy), 0)}-${fix(Math.max(...busy), 0)}%` : 'n/a'} |`,
    );
  }
  return out.join('\n');
}
