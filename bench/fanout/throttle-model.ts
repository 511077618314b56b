/**
 * A model of scenario 2 (quarter size by default) that counts what the throttle policy decides,
 * with no sockets: how many event-loop turns write to each client per second (uWS drains its
 * topic messages once per turn, so that is the number of socket writes), and how long a tick waits
 * for its emission. It explains the gateway CPU measured by run.ts, which is mostly kernel time
 * per socket write, on any machine and without noise.
 *
 *   node --import tsx bench/fanout/throttle-model.ts [--clients 1250] [--symbols 500] [--per-client 20] [--rate 5000] [--throttle 100]
 *
 * Ticks arrive in 1 ms steps (as the publisher sends them), symbols drawn uniformly with a fixed
 * seed. Policies: the burst flush (one tier timer; every dirty channel flushes on its tick), and
 * leading edge with trailing flushes in `slot` ms slots and, with `batch`, leading emissions on
 * the same grid (throttle.batchMs). Two schedules that were only modelled (session 19, not in the
 * hub): `phase`, trailing emissions at a window end off the throttle's own phase moved on to the
 * next in-phase grid point when the oldest waiting update would still have waited at most `W` ms;
 * and `defer`, each socket's writes held until the oldest item it has waits `defer` ms since its
 * tick (a per-socket deadline, whatever the channel's schedule).
 */
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1250' },
    symbols: { type: 'string', default: '500' },
    'per-client': { type: 'string', default: '20' },
    rate: { type: 'string', default: '5000' },
    throttle: { type: 'string', default: '100' },
    seconds: { type: 'string', default: '10' },
    // delivery costs in µs (see COSTS below)
    'server-write': { type: 'string', default: '5' },
    'server-item': { type: 'string', default: '1.16' },
    'server-emission': { type: 'string', default: '3.5' },
    'client-read': { type: 'string', default: '4.3' },
    'client-item': { type: 'string', default: '1.76' },
  },
});
/**
 * The delivery model: the gateway writes the sockets of a turn one after another on its core
 * (per socket write + per item), and the load clients read them in the same order on the other
 * core (per read + per item), each starting when both the write is done and the client is free.
 * The defaults are fitted to the quiet-machine figures of docs/benchmarks.md (burst flush: 1.56
 * µs gateway and 2.1 µs client per update at 12.6 items per write; leading edge: 4.55 and 5.4 µs
 * at 1.2 items per write); per emission (encode + publish, once per (channel, lane)): 2.4 µs of
 * hub JavaScript measured by hub-cost.ts plus about 1 µs for uWS publish (an estimate).
 */
const COSTS = {
  serverWrite: Number(values['server-write']) / 1000,
  serverItem: Number(values['server-item']) / 1000,
  serverEmission: Number(values['server-emission']) / 1000,
  clientRead: Number(values['client-read']) / 1000,
  clientItem: Number(values['client-item']) / 1000,
};
const CL = Number(values.clients),
  CH = Number(values.symbols),
  K = Number(values['per-client']);
const RATE = Number(values.rate),
  T = Number(values.throttle),
  DUR = Number(values.seconds) * 1000;

interface Policy {
  name: string;
  burst?: boolean;
  slot: number;
  batch: number;
  /** throttle.lanes: client c is in lane c % lanes, whose grid is shifted by lane * batch / lanes */
  lanes?: number;
  /** trailing emissions moved on to the grid of this step (the throttle) when the oldest update then waits ≤ W ms */
  phase?: number;
  W?: number;
  /** socket writes held until the socket's oldest item has waited this long since its tick */
  defer?: number;
}
const POLICIES: Policy[] = [
  { name: 'burst flush (before)', burst: true, slot: 0, batch: 0 },
  { name: 'leading edge, 5 ms slots (default)', slot: 5, batch: 0 },
  { name: 'leading edge, batchMs 10', slot: 10, batch: 10 },
  { name: 'leading edge, batchMs 20', slot: 20, batch: 20 },
  { name: 'leading edge, batchMs 25', slot: 25, batch: 25 },
  { name: 'leading edge, batchMs 50', slot: 50, batch: 50 },
  { name: 'leading edge, batchMs 50, 4 lanes', slot: 50, batch: 50, lanes: 4 },
  { name: 'leading edge, batchMs 100', slot: 100, batch: 100 },
  { name: 'leading edge, batchMs 50, 2 lanes', slot: 50, batch: 50, lanes: 2 },
  { name: 'leading edge, batchMs 100, 2 lanes', slot: 100, batch: 100, lanes: 2 },
  { name: 'leading edge, batchMs 100, 3 lanes', slot: 100, batch: 100, lanes: 3 },
  { name: 'leading edge, batchMs 100, 4 lanes', slot: 100, batch: 100, lanes: 4 },
  { name: 'leading edge, batchMs 100, 8 lanes', slot: 100, batch: 100, lanes: 8 },
  { name: 'modelled only: batchMs 50, window ends moved on to the 100 ms phase, W 100', slot: 50, batch: 50, phase: 100, W: 100 },
  { name: 'modelled only: batchMs 50, window ends moved on to the 100 ms phase, W 90', slot: 50, batch: 50, phase: 100, W: 90 },
  { name: 'modelled only: no grid, socket writes held to 100 ms after the oldest tick', slot: 5, batch: 0, defer: 100 },
  { name: 'modelled only: no grid, socket writes held to 120 ms after the oldest tick', slot: 5, batch: 0, defer: 120 },
];

interface Outcome {
  writes: number;
  emissions: number;
  p50: number;
  p99: number;
  max: number;
  burst: number;
  burstMax: number;
  /** delivered updates: latency from tick to client read (ms), with the delivery model */
  lat50: number;
  lat99: number;
  /** gateway CPU per delivered update (µs), delivery model */
  cpu: number;
}

function simulate(p: Policy): Outcome {
  let seed = 7;
  const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff) / 0x80000000;
  // one unit per (channel, lane): its own window, coalescer and subscribers
  const L = p.lanes ?? 1;
  const U = CH * L;
  const offset = (u: number): number => Math.round(((u % L) * p.batch) / L);
  const subsOf: number[][] = Array.from({ length: U }, () => []);
  for (let c = 0; c < CL; c++) {
    const s = new Set<number>();
    while (s.size < Math.min(K, CH)) s.add(Math.floor(rnd() * CH));
    for (const ch of s) subsOf[ch * L + (c % L)]!.push(c);
  }
  const last = new Float64Array(U).fill(-1e9);
  const due = new Float64Array(U).fill(-1);
  const pending: number[][] = Array.from({ length: U }, () => []);
  const turns = new Map<number, Map<number, number>>(); // ms -> (channel, lane) units emitting in that turn -> age of the value sent
  const timers = new Map<number, number[]>();
  const waits: number[] = [];
  let emissions = 0;
  const grid = (x: number, q: number, off = 0): number => (q > 0 ? Math.ceil((x - off) / q) * q + off : x);
  const later = (ch: number, at: number): void => {
    due[ch] = at;
    const l = timers.get(at);
    if (l) l.push(ch);
    else timers.set(at, [ch]);
  };
  const emit = (ch: number, t: number): void => {
    emissions++;
    for (const x of pending[ch]!) waits.push(t - x);
    const age = t - pending[ch]!.at(-1)!;
    pending[ch] = [];
    last[ch] = t;
    due[ch] = -1;
    let s = turns.get(t);
    if (!s) turns.set(t, (s = new Map()));
    s.set(ch, age);
  };
  const perStep = RATE / 1000;
  let carry = 0;
  for (let t = 0; t < DUR; t++) {
    if (p.burst) {
      if (t % T === 0) for (let u = 0; u < U; u++) if (pending[u]!.length) emit(u, t);
    } else {
      const l = timers.get(t);
      timers.delete(t);
      for (const ch of l ?? []) {
        if (due[ch] !== t || !pending[ch]!.length) continue;
        // phase: off the throttle's phase, wait for the next in-phase grid point if the oldest waiting update allows
        if (p.phase && t % p.phase !== 0 && t + p.batch - pending[ch]![0]! <= p.W!) later(ch, t + p.batch);
        else emit(ch, t);
      }
    }
    carry += perStep;
    const now: number[] = [];
    for (; carry >= 1; carry--) {
      const c0 = Math.floor(rnd() * CH);
      for (let ch = c0 * L; ch < c0 * L + L; ch++) {
        if (subsOf[ch]!.length === 0) continue;
        pending[ch]!.push(t);
        if (p.burst || now.includes(ch)) continue;
        const end = last[ch]! + T;
        if (due[ch]! >= 0) {
          if (t >= end && p.batch === 0) now.push(ch); // overdue in its slot: goes in this turn
          continue;
        }
        if (t < end) later(ch, grid(end, p.slot, offset(ch)));
        else if (p.batch === 0 || (t - offset(ch)) % p.batch === 0) now.push(ch);
        else later(ch, grid(t, p.batch, offset(ch)));
      }
    }
    for (const ch of now) emit(ch, t);
  }
  let writes = 0;
  let burstMax = 0;
  let serverFree = 0;
  let clientFree = 0;
  let serverCost = 0;
  let delivered = 0;
  const lat: number[] = [];
  // the writes of each turn: client -> ages (ms since the tick) of the items of its write
  const writesAt = new Map<number, Map<number, number[]>>();
  const write = (t: number, c: number, age: number): void => {
    let w = writesAt.get(t);
    if (!w) writesAt.set(t, (w = new Map()));
    const l = w.get(c);
    if (l) l.push(age);
    else w.set(c, [age]);
  };
  if (p.defer === undefined) {
    for (const [t, chs] of turns) for (const [ch, age] of chs) for (const c of subsOf[ch]!) write(t, c, age);
  } else {
    // per socket: its items in emission order, written together when the oldest reaches its deadline
    const items: [number, number][][] = Array.from({ length: CL }, () => []);
    for (const t of [...turns.keys()].sort((a, b) => a - b)) for (const [ch, age] of turns.get(t)!) for (const c of subsOf[ch]!) items[c]!.push([t, age]);
    for (let c = 0; c < CL; c++) {
      let held: [number, number][] = [];
      let deadline = Infinity;
      const flush = (at: number): void => {
        for (const [t, age] of held) write(at, c, at - t + age);
        held = [];
        deadline = Infinity;
      };
      for (const it of items[c]!) {
        if (it[0] >= deadline) flush(deadline);
        held.push(it);
        deadline = Math.min(deadline, Math.max(it[0], it[0] - it[1] + p.defer));
        if (deadline === it[0]) flush(deadline);
      }
      if (held.length) flush(deadline);
    }
  }
  for (const t of [...writesAt.keys()].sort((a, b) => a - b)) {
    const chs = turns.get(t) ?? new Map<number, number>();
    const ages = writesAt.get(t)!;
    writes += ages.size;
    burstMax = Math.max(burstMax, ages.size);
    serverFree = Math.max(serverFree, t) + chs.size * COSTS.serverEmission;
    serverCost += chs.size * COSTS.serverEmission;
    for (const c of [...ages.keys()].sort((a, b) => a - b)) {
      const items = ages.get(c)!;
      const w = COSTS.serverWrite + items.length * COSTS.serverItem;
      serverFree += w;
      serverCost += w;
      clientFree = Math.max(clientFree, serverFree) + COSTS.clientRead + items.length * COSTS.clientItem;
      for (const age of items) lat.push(clientFree - t + age);
      delivered += items.length;
    }
  }
  lat.sort((a, b) => a - b);
  waits.sort((a, b) => a - b);
  const q = (f: number): number => waits[Math.floor(f * (waits.length - 1))] ?? 0;
  return {
    writes: writes / CL / (DUR / 1000),
    emissions: emissions / CH / (DUR / 1000),
    p50: q(0.5),
    p99: q(0.99),
    max: waits.at(-1) ?? 0,
    burst: writes / Math.max(1, writesAt.size),
    burstMax,
    lat50: lat[Math.floor(0.5 * (lat.length - 1))] ?? 0,
    lat99: lat[Math.floor(0.99 * (lat.length - 1))] ?? 0,
    cpu: (serverCost * 1000) / Math.max(1, delivered),
  };
}

console.log(`Model: ${CL} clients × ${K} of ${CH} symbols, ${RATE} ticks/s in 1 ms steps, throttle ${T} ms, ${DUR / 1000} s\n`);
console.log(
  '| policy | socket writes per client per s | emissions per channel per s | sockets written per turn with output (mean / max) | tick wait p50 / p99 / max ms | delivery model: latency p50 / p99 ms | delivery model: gateway µs per update (vs burst) |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|');
let burstCpu = NaN;
for (const p of POLICIES) {
  const r = simulate(p);
  if (p.burst) burstCpu = r.cpu;
  console.log(
    `| ${p.name} | ${r.writes.toFixed(1)} | ${r.emissions.toFixed(2)} | ${Math.round(r.burst)} / ${r.burstMax} | ${r.p50} / ${r.p99} / ${r.max} | ` +
      `${r.lat50.toFixed(0)} / ${r.lat99.toFixed(0)} | ${r.cpu.toFixed(2)} (${(r.cpu / burstCpu).toFixed(2)}×) |`,
  );
}
console.log(
  '\nThe wait excludes the time to write and read the frames; the writes count one per (client, turn) with output. ' +
    'Emissions count one per (channel, lane). Sockets per turn is the size of a burst: the gateway writes them, and the clients read them, before the last one is served.',
);
