/**
 * The hub's own CPU per tick and per emission for throttle settings, without sockets: scenario 2's
 * tick stream (quarter size by default) through a real Hub on a virtual clock, with a publisher
 * that only counts. It isolates what lanes add in the gateway's JavaScript (one coalescer, encode
 * and publish per (channel, lane)) from the socket writes that run.ts measures, and, being CPU
 * time of this process alone, it is far less sensitive to a busy machine than run.ts.
 *
 *   node --import tsx bench/fanout/hub-cost.ts [--clients 1250] [--symbols 500] [--per-client 20] [--rate 5000] [--throttle 100] [--seconds 10] [--rounds 3]
 *
 * Variants run alternately, --rounds times; the table shows the median and the spread.
 */
import { parseArgs } from 'node:util';
import { cpuUsage } from 'node:process';
import { loadavg } from 'node:os';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { CODECS } from '../../src/codec/frames.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { InstrumentRegistry } from '../../src/core/instruments.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import { Hub, type HubClock, type HubSubscriber } from '../../src/fanout/hub.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1250' },
    symbols: { type: 'string', default: '500' },
    'per-client': { type: 'string', default: '20' },
    rate: { type: 'string', default: '5000' },
    throttle: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
  },
});
const CL = Number(values.clients),
  CH = Number(values.symbols),
  K = Number(values['per-client']),
  RATE = Number(values.rate),
  T = Number(values.throttle),
  DUR = Number(values.seconds) * 1000,
  ROUNDS = Number(values.rounds);

/** Timers in a heap-free list: few are pending at once (one per grid slot in use). */
class Clock implements HubClock {
  now = 0;
  #id = 0;
  readonly #timers = new Map<number, { at: number; fn: () => void }>();
  readonly #deferred: (() => void)[] = [];
  nowMs(): number {
    return this.now;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers.delete(h as number);
  }
  defer(fn: () => void): void {
    this.#deferred.push(fn);
  }
  turn(): void {
    while (this.#deferred.length) this.#deferred.shift()!();
  }
  /** run the timers due up to `end`, in time order */
  until(end: number): void {
    this.turn();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.#timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.#timers.delete(next[0]);
      this.now = next[1].at;
      next[1].fn();
      this.turn();
    }
    this.now = end;
  }
}

const SYMBOLS = Array.from({ length: CH }, (_, i) => `S${String(i).padStart(4, '0')}`);
const registry = new InstrumentRegistry(SYMBOLS.map((symbol) => ({ symbol, assetClass: 'stock', currency: 'USD', pricePrecision: 2, providers: ['bench'] })));
const resolver = new MarketChannelResolver(registry);
const specs = SYMBOLS.map((s) => {
  const r = resolver.resolve(`quote:${s}`);
  if (!r?.ok) throw new Error(`no channel for ${s}`);
  return r.spec;
});

interface Variant {
  name: string;
  batchMs: number;
  lanes: number;
}
const VARIANTS: Variant[] = [
  { name: '`batchMs` 100, 1 lane', batchMs: 100, lanes: 1 },
  { name: '`batchMs` 100, 2 lanes', batchMs: 100, lanes: 2 },
  { name: '`batchMs` 100, 4 lanes', batchMs: 100, lanes: 4 },
  { name: '`batchMs` 50, 1 lane', batchMs: 50, lanes: 1 },
  { name: '`batchMs` 50, 4 lanes', batchMs: 50, lanes: 4 },
];

function once(v: Variant): { usPerTick: number; usPerEmission: number; emissions: number } {
  const clock = new Clock();
  const bus = new MemoryBus();
  let publishes = 0;
  const hub = new Hub({ bus, publisher: { publish: () => void publishes++ }, clock, upstreamReleaseMs: 1000, batchMs: v.batchMs, lanes: v.lanes });
  let seed = 7;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) / 0x80000000;
  const noop = (): void => undefined;
  for (let c = 0; c < CL; c++) {
    const sub: HubSubscriber = { codec: CODECS.msgpack, join: noop, leave: noop, send: noop, closed: false };
    const s = new Set<number>();
    while (s.size < Math.min(K, CH)) s.add(Math.floor(rnd() * CH));
    for (const i of s) hub.subscribe(sub, specs[i]!, T, { snapshot: false });
  }
  // the ticks, encoded up front (the publisher's work, not the hub's)
  const n = Math.round((RATE * DUR) / 1000);
  const ticks: { subject: string; bytes: Uint8Array; at: number }[] = [];
  for (let k = 0; k < n; k++) {
    const i = Math.floor(rnd() * CH);
    const at = Math.floor((k * 1000) / RATE);
    const ts = BigInt(at) * 1_000_000n;
    ticks.push({
      subject: marketSubject('stock', 'quote', SYMBOLS[i]!),
      bytes: encodeTick({ k: 'quote', sym: SYMBOLS[i]!, src: 'b', seq: k + 1, ep: 1, ts, rt: ts, bp: k, ap: k + 1 }),
      at,
    });
  }
  const before = publishes;
  const t0 = cpuUsage();
  for (const t of ticks) {
    if (t.at > clock.now) clock.until(t.at);
    bus.publish(t.subject, t.bytes);
  }
  clock.until(DUR + 1000);
  const used = cpuUsage(t0);
  hub.close();
  const us = used.user + used.system;
  const emissions = publishes - before;
  return { usPerTick: us / n, usPerEmission: us / Math.max(1, emissions), emissions };
}

const results = new Map<string, { perTick: number[]; perEmission: number[]; emissions: number }>();
once(VARIANTS[0]!); // warm up the JIT
for (let r = 0; r < ROUNDS; r++) {
  for (const v of VARIANTS) {
    const x = once(v);
    const e = results.get(v.name) ?? { perTick: [], perEmission: [], emissions: x.emissions };
    e.perTick.push(x.usPerTick);
    e.perEmission.push(x.usPerEmission);
    results.set(v.name, e);
  }
}
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
console.log(
  `Hub only: ${CL} clients × ${K} of ${CH} symbols, ${RATE} ticks/s, throttle ${T} ms, ${DUR / 1000} s virtual; load average ${loadavg()[0]!.toFixed(2)}\n`,
);
console.log('| variant | emissions (publishes) | hub CPU µs per tick, median (spread) | µs per emission |');
console.log('|---|---:|---:|---:|');
for (const v of VARIANTS) {
  const e = results.get(v.name)!;
  console.log(
    `| ${v.name} | ${e.emissions.toLocaleString('en-US')} | ${median(e.perTick).toFixed(2)} (${Math.min(...e.perTick).toFixed(2)}-${Math.max(...e.perTick).toFixed(2)}) | ${median(e.perEmission).toFixed(2)} |`,
  );
}
