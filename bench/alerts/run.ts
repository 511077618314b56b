/**
 * tickwire alerts benchmark: the evaluation index under load, in one process on one core.
 *
 *   npm run bench:alerts                     1,000,000 rules over 500 symbols, 20,000 ticks/s, 30 s
 *   npm run bench:alerts -- --quick          100,000 rules, 10 s
 *   options: --rules N --symbols N --rate TICKS_PER_S --seconds S --seed N --no-write
 *
 * Builds the rules through the public API (validation included), then feeds a seeded random walk
 * of trades and quotes paced in real time at --rate and measures: CPU per tick
 * (process.cpuUsage over the paced run / ticks), fire latency from the tick's scheduled arrival
 * (so a loop that falls behind shows as latency) to the fire callback, and from the start of
 * evaluation; rules fired; heap and RSS after building; machine load (`uptime`). Changes are
 * handed over every 20 ms (alerts.flushMs) as the service would, then dropped: no store here.
 * Prints a markdown report and writes it to bench/results/alerts-<stamp>.md and alerts-latest.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import type { AlertRuleInput } from '../../src/alerts/rule.js';
import { InstrumentRegistry } from '../../src/core/instruments.js';
import type { QuoteTick, TradeTick } from '../../src/core/schema.js';
import { LatencyHistogram } from '../fanout/histogram.js';

interface Options {
  rules: number;
  symbols: number;
  rate: number;
  seconds: number;
  seed: number;
  write: boolean;
  quick: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { rules: 1_000_000, symbols: 500, rate: 20_000, seconds: 30, seed: 7, write: true, quick: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    if (a === '--quick') {
      o.quick = true;
      o.rules = 100_000;
      o.seconds = 10;
    } else if (a === '--rules') o.rules = Math.floor(num());
    else if (a === '--symbols') o.symbols = Math.floor(num());
    else if (a === '--rate') o.rate = num();
    else if (a === '--seconds') o.seconds = num();
    else if (a === '--seed') o.seed = Math.floor(num());
    else if (a === '--no-write') o.write = false;
    else if (a === '--help') {
      console.log('usage: bench/alerts/run.ts [--quick] [--rules N] [--symbols N] [--rate N] [--seconds S] [--seed N] [--no-write]');
      process.exit(0);
    } else throw new Error(`unknown option ${a} (--help)`);
  }
  return o;
}

/** mulberry32: a small seeded PRNG, so runs are comparable */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
const mib = (b: number) => (b / 2 ** 20).toFixed(0);
const uptime = (): string => {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim();
  } catch {
    return `load average: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(', ')}`;
  }
};

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const rand = rng(o.seed);
  const loadBefore = uptime();
  console.error(`alerts bench: ${o.rules} rules, ${o.symbols} symbols, ${o.rate} ticks/s for ${o.seconds} s; ${loadBefore}`);

  // ---- universe and rules ----
  const symbols = Array.from({ length: o.symbols }, (_, i) => `SYM${String(i).padStart(4, '0')}`);
  const ref = symbols.map(() => 20 + rand() * 480);
  const registry = new InstrumentRegistry(
    symbols.map((symbol, i) => ({ symbol, assetClass: 'stock' as const, currency: 'USD', pricePrecision: 2, providers: ['bench'], refPrice: ref[i]! })),
  );
  const t0ms = Date.now();
  const users = Math.max(1, Math.ceil(o.rules / 100));
  const latency = new LatencyHistogram();
  const evalLatency = new LatencyHistogram();
  let arrival = 0; // scheduled arrival of the tick being evaluated (performance.now() ms)
  let evalStart = 0;
  let fired = 0;
  let recording = true;
  const engine = new AlertEngine({
    registry,
    limits: { maxRulesPerUser: 1000, maxWindowMs: 86_400_000 },
    onFire: () => {
      fired++;
      if (!recording) return;
      const now = performance.now();
      latency.record(now - arrival);
      evalLatency.record(now - evalStart);
    },
  });
  gc?.();
  const heap0 = process.memoryUsage();
  const mix = { price: 0, change: 0, spread: 0, rearm: 0, expiring: 0 };
  const buildStart = performance.now();
  for (let i = 0; i < o.rules; i++) {
    const s = Math.floor(rand() * o.symbols);
    const p = ref[s]!;
    const r = rand();
    const rearm = rand() < 0.5;
    const common = {
      id: `r${i}`,
      user: `user${i % users}`,
      symbol: symbols[s]!,
      cooldownMs: rand() < 0.5 ? 0 : 60_000,
      ...(rand() < 0.1 ? { expiresAt: t0ms + 1000 + Math.floor(rand() * o.seconds * 1000 * 2) } : {}),
    };
    let input: AlertRuleInput;
    if (r < 0.7) {
      const above = rand() < 0.5;
      // levels within +-3% of the start price, on the side the name says
      const level = Math.round(p * (above ? 1 + rand() * 0.03 : 1 - rand() * 0.03) * 100) / 100;
      input = {
        ...common,
        kind: 'price',
        direction: above ? 'above' : 'below',
        level,
        source: rand() < 0.5 ? 'trade' : 'mid',
        ...(rearm ? { mode: 'rearm', rearmBy: Math.round(p * 0.002 * 100) / 100 || 0.01 } : {}),
      };
      mix.price++;
    } else if (r < 0.85) {
      const percent = 0.5 + Math.floor(rand() * 6) * 0.5;
      input = {
        ...common,
        kind: 'change',
        direction: rand() < 0.5 ? 'up' : 'down',
        percent,
        windowMs: rand() < 0.5 ? 60_000 : 300_000,
        source: rand() < 0.5 ? 'trade' : 'mid',
        ...(rearm ? { mode: 'rearm', rearmBy: percent / 2 } : {}),
      };
      mix.change++;
    } else {
      const threshold = Math.round(p * (0.0005 + rand() * 0.002) * 100) / 100 || 0.01;
      input = { ...common, kind: 'spread', threshold, ...(rearm ? { mode: 'rearm', rearmBy: threshold / 2 } : {}) };
      mix.spread++;
    }
    if (rearm) mix.rearm++;
    if (common.expiresAt !== undefined) mix.expiring++;
    engine.add(input, t0ms);
  }
  const buildMs = performance.now() - buildStart;
  engine.takeChanges();
  gc?.();
  const heap1 = process.memoryUsage();

  // ---- paced ticks ----
  const px = [...ref];
  const spreadBp = symbols.map(() => 2 + rand() * 8);
  let seq = 0;
  const flushMs = 20;

  /**
   * Feed `total` ticks at o.rate, paced on the clock: each turn evaluates the ticks that are due,
   * then yields with setTimeout(0) when none is (no busy wait, so cpuUsage measures work).
   */
  const paced = async (target: AlertEngine, seconds: number, rate = o.rate) => {
    const total = Math.round(rate * seconds);
    const intervalMs = 1000 / rate;
    let lastFlush = 0;
    let maxLagMs = 0;
    const startPerf = performance.now();
    const wallStart = Date.now();
    const cpu0 = process.cpuUsage();
    let done = 0;
    await new Promise<void>((resolveRun) => {
      const step = (): void => {
        const now = performance.now();
        const due = Math.min(total, Math.floor((now - startPerf) / intervalMs) + 1);
        while (done < due) {
          const s = Math.floor(rand() * o.symbols);
          const p = (px[s] = px[s]! * (1 + (rand() - 0.5) * 0.002));
          const tickArrival = startPerf + done * intervalMs;
          const rtMs = wallStart + (tickArrival - startPerf);
          const rt = BigInt(Math.floor(rtMs)) * 1_000_000n;
          let tick: TradeTick | QuoteTick;
          if (rand() < 0.5) tick = { k: 'trade', sym: symbols[s]!, src: 'bench', seq: ++seq, ep: 1, ts: rt, rt, id: String(seq), p, s: 1 };
          else {
            const half = (p * spreadBp[s]! * (0.5 + rand())) / 20_000;
            tick = { k: 'quote', sym: symbols[s]!, src: 'bench', seq: ++seq, ep: 1, ts: rt, rt, bp: p - half, ap: p + half };
          }
          arrival = tickArrival;
          evalStart = performance.now();
          const lag = evalStart - tickArrival;
          if (lag > maxLagMs) maxLagMs = lag;
          target.onTick(tick, rtMs);
          done++;
        }
        if (now - lastFlush >= flushMs) {
          target.takeChanges();
          lastFlush = now;
        }
        if (done >= total) resolveRun();
        else if (done < Math.floor((performance.now() - startPerf) / intervalMs)) setImmediate(step);
        else setTimeout(step, 0);
      };
      setImmediate(step);
    });
    const cpu = process.cpuUsage(cpu0);
    return { done, cpu, wallMs: performance.now() - startPerf, wallStart, maxLagMs };
  };

  // baseline: the same paced generator against an engine without rules (bench overhead)
  const empty = new AlertEngine({ registry });
  const base = await paced(empty, Math.min(5, o.seconds));
  const baseUs = (base.cpu.user + base.cpu.system) / base.done;
  gc?.();
  // warm-up: 40 ticks per symbol back to back, so every rule has had its first observation (which only arms it)
  recording = false;
  await paced(engine, (o.symbols * 40) / 1e9, 1e9);
  engine.takeChanges();
  recording = true;
  const firedWarm = fired;
  fired = 0;
  gc?.();
  const st0 = { ...engine.stats };
  const { done, cpu, wallMs, wallStart, maxLagMs } = await paced(engine, o.seconds);
  const st1 = { ...engine.stats };
  // rules the index touched: each one fired, was swallowed, re-armed, armed or expired (a scan would visit every rule of the symbol)
  const visits =
    st1.fired - st0.fired + (st1.suppressed - st0.suppressed) + (st1.rearmed - st0.rearmed) + (st1.armed - st0.armed) + (st1.expired - st0.expired);
  gc?.();
  const heap2 = process.memoryUsage();
  const cpuUs = cpu.user + cpu.system;
  // capacity: the same engine fed back to back (rate = infinity), ticks evaluated in one loop
  const firedBefore = fired;
  recording = false;
  const burstTicks = o.rate * 2;
  const burst = await paced(engine, burstTicks / 1e9, 1e9);
  const burstUs = (burst.cpu.user + burst.cpu.system) / burst.done;
  const burstFired = fired - firedBefore;
  fired = firedBefore;
  const loadAfter = uptime();

  const pct = (h: LatencyHistogram, q: number) => (h.total ? h.quantile(q).toFixed(3) : '—');
  const lines = [
    `# alerts benchmark (${new Date(wallStart).toISOString()})`,
    '',
    `command: \`npm run bench:alerts --${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}\` · node ${process.versions.node} · ${cpus()[0]?.model.trim() ?? '?'} · ${cpus().length} cores · ${(totalmem() / 2 ** 30).toFixed(0)} GiB${gc ? '' : ' · (run with --expose-gc for exact heap figures)'}`,
    '',
    `load before: \`${loadBefore}\``,
    `load after:  \`${loadAfter}\``,
    '',
    '| figure | value |',
    '|---|---|',
    `| rules | ${o.rules.toLocaleString('en')} over ${o.symbols} symbols (${users.toLocaleString('en')} users): ${mix.price.toLocaleString('en')} price, ${mix.change.toLocaleString('en')} change, ${mix.spread.toLocaleString('en')} spread; ${mix.rearm.toLocaleString('en')} rearm, ${mix.expiring.toLocaleString('en')} expiring |`,
    `| build (validate + index) | ${(buildMs / 1000).toFixed(1)} s, ${((buildMs * 1000) / o.rules).toFixed(1)} µs per rule |`,
    `| memory after build | heap +${mib(heap1.heapUsed - heap0.heapUsed)} MiB (${((heap1.heapUsed - heap0.heapUsed) / o.rules) | 0} B per rule), RSS ${mib(heap1.rss)} MiB |`,
    `| ticks | ${done.toLocaleString('en')} in ${(wallMs / 1000).toFixed(1)} s (${Math.round(done / (wallMs / 1000)).toLocaleString('en')}/s, target ${o.rate.toLocaleString('en')}/s), 50% trades 50% quotes |`,
    `| CPU per tick | ${(cpuUs / done).toFixed(2)} µs (user ${(cpu.user / done).toFixed(2)}, system ${(cpu.system / done).toFixed(2)}); ${((cpuUs / 1000 / wallMs) * 100).toFixed(1)}% of one core |`,
    `| CPU per tick, generator alone (no rules) | ${baseUs.toFixed(2)} µs: the index costs about ${(cpuUs / done - baseUs).toFixed(2)} µs per tick |`,
    `| rules visited per tick | ${(visits / done).toFixed(2)} (fired, swallowed, re-armed, armed or expired: nothing else is touched), against ${Math.round(o.rules / o.symbols).toLocaleString('en')} rules per symbol a scan would visit |`,
    `| rules fired | ${fired.toLocaleString('en')} (swallowed by cooldown ${(st1.suppressed - st0.suppressed).toLocaleString('en')}, re-armed ${(st1.rearmed - st0.rearmed).toLocaleString('en')}, expired ${(st1.expired - st0.expired).toLocaleString('en')}); ${firedWarm.toLocaleString('en')} more during the warm-up (${(o.symbols * 40).toLocaleString('en')} ticks, not measured) |`,
    `| fire latency, tick arrival → callback | p50 ${pct(latency, 0.5)} ms, p99 ${pct(latency, 0.99)} ms, max ${latency.total ? latency.max.toFixed(3) : '—'} ms |`,
    `| fire latency, evaluation start → callback | p50 ${pct(evalLatency, 0.5)} ms, p99 ${pct(evalLatency, 0.99)} ms, max ${evalLatency.total ? evalLatency.max.toFixed(3) : '—'} ms |`,
    `| back to back (capacity) | ${burst.done.toLocaleString('en')} ticks in ${(burst.wallMs / 1000).toFixed(2)} s: ${Math.round(burst.done / (burst.wallMs / 1000)).toLocaleString('en')} ticks/s, ${burstUs.toFixed(2)} µs CPU per tick (generator included), ${burstFired.toLocaleString('en')} fired |`,
    `| worst scheduling lag of a tick | ${maxLagMs.toFixed(2)} ms |`,
    `| memory after run (after GC) | heap ${mib(heap2.heapUsed)} MiB, RSS ${mib(heap2.rss)} MiB; ${engine.size.toLocaleString('en')} rules left |`,
    '',
    'Latency percentiles are bucket upper edges (10 µs buckets). Ticks are built in process (no bus, no decode): the figures are the index alone.',
  ];
  const md = lines.join('\n');
  process.stdout.write(md + '\n');
  if (o.write) {
    const dir = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'results');
    mkdirSync(dir, { recursive: true });
    const stamp = new Date(wallStart).toISOString().replace(/[:]/g, '').replace(/\..*/, '');
    const label = o.quick ? '-quick' : '';
    writeFileSync(join(dir, `alerts-${stamp}${label}.md`), md + '\n');
    writeFileSync(join(dir, `alerts-latest${label}.md`), md + '\n');
    console.error(`wrote bench/results/alerts-${stamp}${label}.md and alerts-latest${label}.md`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
