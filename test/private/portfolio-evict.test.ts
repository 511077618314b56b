import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { portfolioKickSubject, portfolioSubject } from '../../src/bus/private-subjects.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { decodeBusMessage, encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { GatewayBus } from '../../src/fanout/gateway-bus.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import type { PortfolioPayload } from '../../src/portfolio/valuation.js';
import { waitFor } from '../helpers/wait.js';
import { OutageStore, ReplayLog } from './portfolio-seams.js';

/**
 * Idle users' books leave the portfolio service's memory (`portfolio.idleMs`) and come back from
 * the position store on use (docs/private-streams.md, "Portfolio"): nothing lost or applied twice,
 * a watched user (a gateway renews its interest) keeps the book, an unsaved book stays.
 */

let n = 0;
const buy = (qty: number, p = 100): ExecutionPayload => ({ id: `e${++n}`, order: 'o', sym: 'AAPL', side: 'buy', qty, p, t: Date.now() }) as ExecutionPayload;
const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.', idleMs: 200 };
const ticker = (p: number): Tick => {
  const ts = msToNs(Date.now());
  return { k: 'ticker', sym: 'AAPL', src: 't', seq: 1, ep: 1, ts, rt: ts, p, bp: 0, ap: 0, o: p, h: p, l: p, v: 1, chg: 0, chgp: 0 } as unknown as Tick;
};

describe('portfolio books of idle users', () => {
  it('leave memory once saved and idle, and come back from the store: each execution applied once', async () => {
    const bus = new MemoryBus();
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const store = new MemoryPositionStore();
    const svc = new PortfolioService({ bus, registry: defaultRegistry(), store, events, config });
    await svc.start();
    try {
      for (let i = 0; i < 50; i++) await events.append(`u${i}`, buy(10));
      await waitFor(() => svc.heldBooks === 50, 'the books in memory');
      await waitFor(() => svc.heldBooks === 0, 'the idle books evicted');
      expect(svc.stats.evicted).toBe(50);
      expect(await store.load()).toHaveLength(50);

      // an execution of an evicted user: the stored book read back, the execution applied once
      await events.append('u1', buy(1, 110));
      await waitFor(() => svc.heldBooks === 1, 'the book read back');
      expect(await svc.getPositions('u1')).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 11, cost: 1110 }] });
      // a read of another evicted user answers from the store without keeping the book
      expect(await svc.getPositions('u2')).toMatchObject({ seq: 1, positions: [{ sym: 'AAPL', qty: 10, cost: 1000 }] });
      expect(await svc.getPositions('nobody')).toBeUndefined();
      expect(svc.heldBooks).toBe(1);

      // a new subscriber of an evicted user: the valuation of the stored book, not an empty one
      const seen: PortfolioPayload[] = [];
      bus.subscribe(portfolioSubject('u3'), (_s, payload) => seen.push(decodeBusMessage(payload)));
      bus.publish(portfolioKickSubject('u3'), new Uint8Array(0));
      const first = await waitFor(() => seen[0], "u3's valuation");
      expect(first.positions).toMatchObject([{ sym: 'AAPL', qty: 10 }]);
      await waitFor(() => svc.heldBooks === 0, 'evicted again once idle');
      // and a later execution after the first one was read back twice
      await events.append('u1', buy(1, 120));
      await waitFor(async () => (await store.get('u1'))?.seq === 3, 'the third execution saved');
      expect(await svc.getPositions('u1')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 12, cost: 1230 }] });
    } finally {
      await svc.close();
    }
  });

  it('a gateway serving the user keeps the book (renewals); an unsaved book is never evicted', async () => {
    const bus = new MemoryBus();
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const store = new OutageStore();
    const svc = new PortfolioService({ bus, registry: defaultRegistry(), store, events, config });
    await svc.start();
    const gw = new GatewayBus(bus, { renewMs: 50 });
    const seen: PortfolioPayload[] = [];
    const unsubscribe = gw.subscribe(portfolioSubject('watched'), (_s, payload) => seen.push(decodeBusMessage(payload)));
    try {
      await events.append('watched', buy(10));
      await events.append('idle', buy(10));
      await waitFor(async () => (await store.inner.load()).length === 2, 'both books saved');
      await waitFor(() => svc.heldBooks === 1, "the idle user's book evicted");
      // the watched user's book is held: a price move is valued at once
      bus.publish(marketSubject('stock', 'ticker', 'AAPL'), encodeTick(ticker(150)));
      await waitFor(() => seen.some((v) => v.value === 1500), 'the valuation at the new price');

      // the store down: a new execution is applied in memory, its book kept until saved
      store.down('save');
      await events.append('idle', buy(1));
      await waitFor(() => svc.heldBooks === 2 && svc.unsavedUsers === 1, 'the execution applied, unsaved');
      unsubscribe();
      await waitFor(() => svc.heldBooks === 1, 'the no longer watched book evicted');
      expect(svc.unsavedUsers).toBe(1);
      expect(await svc.getPositions('idle')).toMatchObject({ seq: 2, positions: [{ qty: 11 }] });
      store.up();
      await waitFor(() => svc.heldBooks === 0, 'evicted once saved');
      expect(await store.inner.get('idle')).toMatchObject({ seq: 2, positions: { AAPL: { qty: 11 } } });
    } finally {
      unsubscribe();
      await gw.close();
      await svc.close();
    }
  });

  it('an evicted user returning while the store is down: the executions wait for the book, the checkpoint below them, none lost', async () => {
    const events = new ReplayLog();
    const store = new OutageStore();
    const a = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await a.start();
    await events.append('r', buy(10)); // position 1
    await waitFor(() => a.heldBooks === 1, 'applied');
    await waitFor(() => a.heldBooks === 0, 'evicted');
    await waitFor(async () => (await store.inner.checkpoint()) === 1, 'the checkpoint');

    store.down('get', 'save');
    await events.append('r', buy(1)); // position 2
    await events.append('s', buy(2)); // position 3: a new user, its book cannot be looked up either
    await waitFor(() => a.unsavedUsers === 0 && a.heldBooks === 0, 'nothing applied');
    await a.close(); // a stop before the store is back: position 2 was never applied
    expect(await store.inner.checkpoint()).toBe(1);

    store.up();
    const b = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await b.start();
    try {
      await waitFor(async () => (await b.getPositions('r'))?.seq === 2, 'the waiting execution applied after the restart');
      expect(await b.getPositions('r')).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 11, cost: 1100 }] });
      expect(await b.getPositions('s')).toMatchObject({ seq: 1, positions: [{ sym: 'AAPL', qty: 2 }] });
    } finally {
      await b.close();
    }
  });
});
