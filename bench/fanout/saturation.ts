/**
 * Saturation search (`run.ts --saturate`): the highest tick rate a gateway configuration
 * sustains with every update delivered (no sequence gap, nothing owed missing) and p99 under a
 * bound. Each probe is one whole fan-out run (gateway started afresh, clients connected and
 * subscribed, warm-up, measured phase, drain) at one rate. The rate doubles until a probe fails,
 * then the search bisects between the best passing and the lowest failing rate.
 */
import { execFileSync } from 'node:child_process';
import type { FanoutResult } from './report.js';
import type { FanoutScenario, Options } from './scenarios.js';

export interface Probe {
  rate: number;
  ok: boolean;
  why: string;
  result: FanoutResult;
}

export interface SaturationSearch {
  gatewayWorkers: number;
  probes: Probe[];
  /** the highest passing probe */
  best: Probe | undefined;
  /** the lowest failing probe above it */
  failed: Probe | undefined;
}

/** `uptime` as printed (load averages), for the report. */
export function uptime(): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return 'uptime unavailable';
  }
}

export function judge(r: FanoutResult, p99LimitMs: number): { ok: boolean; why: string } {
  if (r.error) return { ok: false, why: `error: ${r.error}` };
  if (r.failed > 0) return { ok: false, why: `${r.failed} clients failed to connect` };
  if (r.delivered < r.expected) return { ok: false, why: `${r.delivered} of ${r.expected} delivered` };
  if (r.skipped > 0) return { ok: false, why: `${r.skipped} sequence gaps` };
  if (r.finalOk < r.finalTotal) return { ok: false, why: `last value missing on ${r.finalTotal - r.finalOk} (client, channel)` };
  if (!(r.p99 < p99LimitMs)) return { ok: false, why: `p99 ${r.p99.toFixed(1)} ms` };
  return { ok: true, why: `p99 ${r.p99.toFixed(1)} ms` };
}

export async function searchSaturation(
  s: FanoutScenario,
  gatewayWorkers: number,
  opts: Pick<Options, 'p99LimitMs' | 'probes'>,
  run: (rate: number) => Promise<FanoutResult>,
  log: (msg: string) => void,
): Promise<SaturationSearch> {
  const probes: Probe[] = [];
  let best: Probe | undefined;
  let failed: Probe | undefined;
  let rate = s.rate;
  for (let i = 0; i < opts.probes; i++) {
    const result = await run(rate);
    const { ok, why } = judge(result, opts.p99LimitMs);
    const probe: Probe = { rate, ok, why, result };
    probes.push(probe);
    log(`  probe ${i + 1}: ${rate} ticks/s → ${ok ? 'sustained' : 'not sustained'} (${why})`);
    if (ok && (!best || rate > best.rate)) best = probe;
    if (!ok && (!failed || rate < failed.rate)) failed = probe;
    const lo = best?.rate ?? 0;
    const hi = failed?.rate;
    if (hi === undefined) rate = rate * 2;
    else if (lo === 0) rate = Math.max(1, Math.round(hi / 2));
    else {
      if (hi / lo <= 1.1) break;
      rate = Math.round((lo + hi) / 2);
    }
  }
  return { gatewayWorkers, probes, best, failed };
}

interface SaturationInfo {
  startedAt: Date;
  elapsedMs: number;
  node: string;
  cpus: string;
  cores: number;
  command: string;
  uptimeBefore: string;
  uptimeAfter: string;
  loadProcesses: string;
}

const fix = (n: number, d: number): string => (Number.isFinite(n) ? n.toFixed(d) : '—');
const int = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
/** CPU of a part of the run in cores (1.0 = one core busy for the whole window). */
const cores = (micros: number, r: FanoutResult): number => micros / 1000 / r.cpuWindowMs;

export function renderSaturation(info: SaturationInfo, s: FanoutScenario, searches: readonly SaturationSearch[], p99LimitMs: number): string {
  const subsPerTick = (s.clients * s.perClient) / s.symbols;
  const out = [
    `# tickwire fan-out saturation search (${info.startedAt.toISOString()})`,
    '',
    `${s.clients.toLocaleString('en-US')} clients × ${s.perClient} of ${s.symbols} symbols, unthrottled (throttle ${s.throttle} ms), ` +
      `${fix(subsPerTick, 1)} subscribers per tick; a rate is sustained when every update owed is delivered (no sequence gap, last value everywhere) and p99 < ${p99LimitMs} ms. ` +
      `Each probe: ${fix(s.warmupMs / 1000, 1)} s warm-up, ${fix(s.durationMs / 1000, 1)} s measured.`,
    '',
    `Machine: ${info.cores} × ${info.cpus}, Node ${info.node}. Load clients: ${info.loadProcesses}, in separate processes on the same machine. Took ${fix(info.elapsedMs / 60000, 1)} min.`,
    '',
    `\`uptime\` before: \`${info.uptimeBefore}\``,
    '',
    `\`uptime\` after: \`${info.uptimeAfter}\``,
    '',
    '| gateway workers | highest sustained ticks/s | updates/s delivered | p50 / p99 ms | gateway CPU (cores) | gateway µs/upd | load clients CPU (cores) | publisher + NATS (cores) | box busy | first failing rate (why) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const x of searches) {
    const b = x.best?.result;
    out.push(
      `| ${x.gatewayWorkers} | ${x.best ? int(x.best.rate) : 'none'} | ${b ? int((b.received * 1000) / b.windowMs) : '—'} | ${b ? `${fix(b.p50, 1)} / ${fix(b.p99, 1)}` : '—'} | ` +
        `${b ? fix(cores(b.cpuMicros, b), 2) : '—'} | ${b ? fix(b.cpuMicros / b.received, 2) : '—'} | ${b ? fix(cores(b.clientCpuMicros, b), 2) : '—'} | ${b ? fix(cores(b.feedCpuMicros, b), 2) : '—'} | ` +
        `${b ? `${fix(b.boxBusy * 100, 0)}%` : '—'} | ${x.failed ? `${int(x.failed.rate)} (${x.failed.why})` : 'none failed'} |`,
    );
  }
  out.push(
    '',
    '### Every probe',
    '',
    '| gateway workers | ticks/s | result | delivered / owed | p50 / p99 / max ms | gateway CPU (cores) | load clients CPU (cores) | box busy |',
    '|---:|---:|---|---:|---:|---:|---:|---:|',
  );
  for (const x of searches) {
    for (const p of x.probes) {
      const r = p.result;
      out.push(
        `| ${x.gatewayWorkers} | ${int(p.rate)} | ${p.ok ? 'sustained' : 'not sustained'}: ${p.why} | ${int(r.delivered)} / ${int(r.expected)} | ${fix(r.p50, 1)} / ${fix(r.p99, 1)} / ${fix(r.max, 0)} | ` +
          `${fix(cores(r.cpuMicros, r), 2)} | ${fix(cores(r.clientCpuMicros, r), 2)} | ${fix(r.boxBusy * 100, 0)}% |`,
      );
    }
  }
  out.push('', `Command: \`${info.command}\``);
  return out.join('\n');
}
