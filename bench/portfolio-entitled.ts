/**
 * Cost of a restricted portfolio view at the gateway (docs/private-streams.md "Entitlements"):
 * per `pf.val.<user>` message, the real-time decode against the restricted one (decode +
 * entitledPortfolio), for a book of N positions, half of them delayed; the message carries the
 * service's delayed valuation (`dv`, every position at a delayed price), as it does since delayed
 * lines are shown at their delayed price, and, for comparison, the message without it.
 *
 *   node --import tsx bench/portfolio-entitled.ts [positions=20] [messages=200000]
 */
import { execSync } from 'node:child_process';
import { decodeBusMessage, encodeBusMessage } from '../src/codec/tick-codec.js';
import { entitledPortfolio } from '../src/fanout/portfolio-view.js';

const n = Number(process.argv[2] ?? 20);
const messages = Number(process.argv[3] ?? 200_000);
const positions = Array.from({ length: n }, (_, i) => ({
  sym: `S${i}`,
  qty: 10 + i,
  p: 100 + i,
  value: (10 + i) * (100 + i),
  pnl: 5 * i,
  ccy: i % 3 === 0 ? 'EUR' : 'USD',
  cost: (10 + i) * (100 + i) - 5 * i,
  day_pnl: i,
}));
const base = { ccy: 'USD', value: 1, cost: 1, pnl: 0, day_pnl: 0, positions, t: Date.now(), realized: 0, fx: { EUR: 1.08 } };
const dv = { ms: 900_000, lines: positions.map((x) => [x.p - 1, x.value - x.qty, x.pnl - x.qty, x.day_pnl - x.qty]), fx: { EUR: 1.07 } };
const payload = encodeBusMessage({ ...base, dv });
const withoutDv = encodeBusMessage(base);
const access = (sym: string) => (Number(sym.slice(1)) % 2 === 0 ? ('realtime' as const) : ('delayed' as const));
const classOf = () => 'stock' as const;

function run(label: string, fn: () => unknown): number {
  for (let i = 0; i < 10_000; i++) fn(); // warm up
  const t0 = process.hrtime.bigint();
  let sink = 0;
  for (let i = 0; i < messages; i++) sink += (fn() as { t: number }).t > 0 ? 1 : 0;
  const ns = Number(process.hrtime.bigint() - t0) / messages;
  console.log(`${label.padEnd(34)} ${(ns / 1000).toFixed(2)} µs/message  (${sink === messages ? 'ok' : 'bad'})`);
  return ns;
}

console.log(`load: ${execSync('uptime').toString().trim()}`);
console.log(`positions: ${n}, messages: ${messages}`);
console.log(`message bytes: ${payload.length} with dv, ${withoutDv.length} without`);
const before = run('real-time decode, no dv (before)', () => decodeBusMessage(withoutDv));
const rt = run('real-time decode, with dv', () => decodeBusMessage(payload));
const rs = run('restricted decode + view, with dv', () => entitledPortfolio(decodeBusMessage(payload), access, classOf));
console.log(
  `real-time with dv / before: ${(rt / before).toFixed(2)}x; restricted / real-time: ${(rs / rt).toFixed(2)}x (once per message per distinct entitlements claim per gateway)`,
);
