import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { entitledPortfolio } from '../../src/fanout/portfolio-view.js';
import { FxRates } from '../../src/portfolio/fx.js';
import { applyExecution, emptyBook } from '../../src/portfolio/positions.js';
import { valuate } from '../../src/portfolio/valuation.js';
import type { PriceSource } from '../../src/portfolio/valuation.js';

/**
 * The portfolio's amounts against the same average-cost rules computed exactly (rationals of
 * BigInts) over decimal prices, quantities and fees (docs/private-streams.md#portfolio). Before the
 * fix the book kept the float noise of every execution's amounts: a position bought at 0.1 and 0.2
 * and sold at 0.15 showed `realized: -2.77555756156e-17`, `pnl: -2.77555756156e-17` and
 * `day_pnl: -5.55111512313e-17` (a broker shows 0.00, and the sign says "loss"), and the noise
 * added up execution after execution.
 */

type Q = { n: bigint; d: bigint };
const gcd = (a: bigint, b: bigint): bigint => {
  a = a < 0n ? -a : a;
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
};
const q = (n: bigint, d = 1n): Q => {
  if (d < 0n) [n, d] = [-n, -d];
  const g = gcd(n, d) || 1n;
  return { n: n / g, d: d / g };
};
const add = (a: Q, b: Q): Q => q(a.n * b.d + b.n * a.d, a.d * b.d);
const sub = (a: Q, b: Q): Q => add(a, q(-b.n, b.d));
const mul = (a: Q, b: Q): Q => q(a.n * b.n, a.d * b.d);
const div = (a: Q, b: Q): Q => q(a.n * b.d, a.d * b.n);
const abs = (a: Q): Q => q(a.n < 0n ? -a.n : a.n, a.d);
const sign = (a: Q): number => (a.n > 0n ? 1 : a.n < 0n ? -1 : 0);
const lt = (a: Q, b: Q): boolean => sub(a, b).n < 0n;
const num = (a: Q): number => Number(a.n) / Number(a.d);

interface Fill {
  side: 'buy' | 'sell';
  /** quantity in hundredths, price in ten-thousandths, fee in cents */
  qty: number;
  p: number;
  fee: number | null;
}

/** The average-cost method of docs/private-streams.md#portfolio, exactly. */
function exact(fills: Fill[]): { qty: Q; cost: Q; realized: Q; flow: Q } {
  let qty = q(0n);
  let cost = q(0n);
  let realized = q(0n);
  let flow = q(0n);
  for (const f of fills) {
    const size = q(BigInt(f.qty), 100n);
    const s = f.side === 'buy' ? size : q(-size.n, size.d);
    const p = q(BigInt(f.p), 10_000n);
    const fee = q(BigInt(f.fee ?? 0), 100n);
    flow = add(flow, add(mul(s, p), fee));
    if (sign(qty) === 0 || sign(qty) === sign(s)) {
      qty = add(qty, s);
      cost = add(cost, add(mul(s, p), fee));
      continue;
    }
    const closing = lt(abs(s), abs(qty)) ? abs(s) : abs(qty);
    const dir = q(BigInt(sign(qty)));
    const closed = div(mul(cost, closing), abs(qty));
    const rest = sub(abs(s), closing);
    const openFee = sign(rest) > 0 ? div(mul(fee, rest), abs(s)) : q(0n);
    realized = add(realized, sub(sub(mul(mul(p, closing), dir), closed), sub(fee, openFee)));
    cost = sub(cost, closed);
    qty = sub(qty, mul(closing, dir));
    if (sign(rest) > 0) {
      qty = mul(q(BigInt(sign(s))), rest);
      cost = add(mul(qty, p), openFee);
    }
  }
  if (sign(qty) === 0) cost = q(0n);
  return { qty, cost, realized, flow };
}

const NOW = Date.UTC(2026, 10, 30, 15);
const usd = new FxRates(defaultRegistry(), () => undefined);
const at = (p: number): PriceSource => ({ price: () => ({ p, open: p }) });
const toPayload = (f: Fill, i: number): ExecutionPayload =>
  ({
    id: `x${i}`,
    order: 'o',
    sym: 'AAPL',
    side: f.side,
    qty: f.qty / 100,
    p: f.p / 10_000,
    ...(f.fee === null ? {} : { fee: f.fee / 100 }),
    t: NOW,
  }) as ExecutionPayload;

function book(fills: Fill[]) {
  const b = emptyBook('u', 'USD', NOW);
  fills.forEach((f, i) => applyExecution(b, toPayload(f, i), NOW));
  return b;
}

const fill = fc.record({
  side: fc.constantFrom('buy' as const, 'sell' as const),
  qty: fc.integer({ min: 1, max: 1_000_000 }),
  p: fc.integer({ min: 0, max: 20_000_000 }),
  fee: fc.option(fc.integer({ min: 0, max: 5_000 })),
});

/** |got - want| within 12 significant digits of `scale` (the wire's precision); 0 exactly when want is 0 */
function near(got: number, want: Q, scale: number, what: string): void {
  if (sign(want) === 0) expect(got, `${what}: exactly 0`).toBe(0);
  else expect(Math.abs(got - num(want)), `${what}: ${got} against ${num(want)}`).toBeLessThanOrEqual(1e-11 * Math.max(scale, 1e-300));
}

describe('portfolio amounts against exact average-cost arithmetic', () => {
  it('bought at 0.1 and 0.2, sold at the average 0.15: nothing realized, no P&L (was -2.8e-17)', () => {
    const fills: Fill[] = [
      { side: 'buy', qty: 100, p: 1000, fee: null },
      { side: 'buy', qty: 100, p: 2000, fee: null },
      { side: 'sell', qty: 100, p: 1500, fee: null },
    ];
    const v = valuate(book(fills), at(0.15), usd, defaultRegistry(), NOW);
    expect(v).toMatchObject({ value: 0.15, cost: 0.15, pnl: 0, day_pnl: 0, realized: 0 });
    expect(v.positions[0]).toMatchObject({ qty: 1, p: 0.15, value: 0.15, cost: 0.15, pnl: 0, day_pnl: 0 });
  });

  it('lines that cancel out: total value 0, not float noise (the service and a restricted view)', () => {
    const b = emptyBook('u', 'USD', NOW);
    applyExecution(b, { id: 'a', order: 'o', sym: 'AAPL', side: 'buy', qty: 1, p: 0.1, t: NOW }, NOW);
    applyExecution(b, { id: 'b', order: 'o', sym: 'MSFT', side: 'buy', qty: 1, p: 0.2, t: NOW }, NOW);
    applyExecution(b, { id: 'c', order: 'o', sym: 'TSLA', side: 'sell', qty: 1, p: 0.3, t: NOW }, NOW);
    const px: Record<string, number> = { AAPL: 0.1, MSFT: 0.2, TSLA: 0.3 };
    const prices: PriceSource = { price: (sym) => ({ p: px[sym]!, open: px[sym]! }) };
    const v = valuate(b, prices, usd, defaultRegistry(), NOW);
    // 0.1 + 0.2 - 0.3 is 5.55e-17 in doubles
    expect(v).toMatchObject({ value: 0, cost: 0, pnl: 0, day_pnl: 0 });
    // a gateway's view for a token without crypto sums the same lines itself
    const registry = defaultRegistry();
    const view = entitledPortfolio(
      JSON.parse(JSON.stringify(v)) as Parameters<typeof entitledPortfolio>[0],
      (_sym, cls) => (cls === 'stock' ? 'realtime' : 'none'),
      (sym) => registry.get(sym)?.assetClass,
    );
    expect(view).toMatchObject({ value: 0, cost: 0, pnl: 0, day_pnl: 0 });
  });

  it('fast-check: quantity, cost, realized, P&L and day P&L follow the exact computation to 12 significant digits, and are 0 when it is', () => {
    fc.assert(
      fc.property(fc.array(fill, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 20_000_000 }), (fills, last) => {
        const want = exact(fills);
        const b = book(fills);
        const price = last / 10_000;
        const v = valuate(b, at(price), usd, defaultRegistry(), NOW);
        // the amounts a figure is computed from, all together (a cost is the sum of its fills'): the
        // wire shows 12 significant digits of the figure, which can be as large as their sum (four
        // sells of up to 3.5e6 each made a cost of -10000000.3892 against -10000000.389158 exactly,
        // within 12 digits of the cost but not of the largest fill)
        const scale = fills.reduce((a, f) => a + (f.qty / 100) * (f.p / 10_000) + (f.fee ?? 0) / 100, 0) + Math.abs(num(want.qty) * price);
        near(v.realized, want.realized, scale, 'realized');
        const line = v.positions[0];
        if (sign(want.qty) === 0) {
          expect(line).toBeUndefined();
          return;
        }
        expect(line!.qty).toBe(num(want.qty));
        near(line!.cost, want.cost, scale, 'cost');
        near(line!.pnl, sub(mul(want.qty, q(BigInt(last), 10_000n)), want.cost), scale, 'pnl');
        near(line!.day_pnl, sub(mul(want.qty, q(BigInt(last), 10_000n)), want.flow), scale, 'day_pnl');
        near(v.pnl, sub(mul(want.qty, q(BigInt(last), 10_000n)), want.cost), scale, 'total pnl');
      }),
      { numRuns: 2000 },
    );
  });

  it('fast-check: bought in parts at decimal prices and sold at their exact average, nothing is realized', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ qty: fc.integer({ min: 1, max: 1000 }), p: fc.integer({ min: 1, max: 1_000_000 }) }), { minLength: 2, maxLength: 12 }),
        (lots) => {
          // equal quantities: the average is the mean of the prices, a decimal when it is one
          const n = lots.length;
          const sum = lots.reduce((a, l) => a + l.p, 0);
          fc.pre(sum % n === 0);
          const qty = lots[0]!.qty;
          const fills: Fill[] = lots.map((l) => ({ side: 'buy', qty, p: l.p, fee: null }));
          fills.push({ side: 'sell', qty: qty * n, p: sum / n, fee: null });
          const v = valuate(book(fills), at(1), usd, defaultRegistry(), NOW);
          expect(v.realized).toBe(0);
          expect(v.positions).toEqual([]);
        },
      ),
      { numRuns: 500 },
    );
  });
});
