import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BookTick } from '../../src/core/schema.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { OrderBook } from '../../src/book/order-book.js';
import type { BookLevel } from '../../src/protocol/book.js';

/**
 * Failover of a symbol's book between two feeds (docs/feeds.md, "Failover per symbol"). Book ticks
 * are changes to the book of the feed that sends them: applied to another feed's book they give
 * neither (a bid of one venue above the other's ask). Before, the first updates of the feed that
 * took over were applied to the book of the one it replaced, in the publisher's book, on the bus
 * and in the stored book a gateway starts from, until the new feed happened to send a whole book.
 */
const T = 1795185000000000000n;
const pubs: TickPublisher[] = [];
afterEach(() => {
  for (const p of pubs.splice(0)) p.close();
});

function rig() {
  let active = 'a';
  const bus = new MemoryBus();
  const onBus: BookTick[] = [];
  bus.subscribe('md.>', (_s, payload) => {
    const t = decodeTick(payload);
    if (t.k === 'book') onBus.push(t);
  });
  const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, selector: { accept: (feed) => feed === active } });
  pubs.push(pub);
  const book = (feed: string, bids: BookLevel[], asks: BookLevel[], reset = false) =>
    pub.publish(feed, { k: 'book', sym: 'BTC-USD', ...(reset ? { reset: true } : {}), bids, asks, ts: T });
  // what the failover selector does on a switch: the new source serves the symbol, in a new epoch
  const switchTo = (feed: string) => {
    active = feed;
    pub.sequencer.bumpEpoch('BTC-USD');
  };
  /** the book a client rebuilds from the bus */
  const rebuilt = () => {
    const b = new OrderBook(1000);
    for (const t of onBus) {
      if (t.reset) b.reset(t.bids, t.asks);
      else b.apply(t.bids, t.asks);
    }
    return b.view(100);
  };
  return { pub, book, switchTo, onBus, rebuilt };
}

describe('order books across a failover switch', () => {
  it("publishes the whole book of the feed that takes over, never its changes on top of the other feed's book", () => {
    const r = rig();
    r.book(
      'a',
      [
        [100, 1],
        [99, 1],
      ],
      [
        [101, 1],
        [102, 1],
      ],
      true,
    );
    // the backup follows its own venue meanwhile: not published
    r.book(
      'b',
      [
        [200, 1],
        [199, 1],
      ],
      [[201, 1]],
      true,
    );
    r.book(
      'b',
      [[198, 3]],
      [
        [201, 0],
        [202, 2],
      ],
    );
    expect(r.onBus).toHaveLength(1);
    r.switchTo('b');
    r.book('b', [[200, 5]], []);
    const b = {
      bids: [
        [200, 5],
        [199, 1],
        [198, 3],
      ],
      asks: [[202, 2]],
    };
    expect(r.pub.books.get('BTC-USD')!.view(100)).toEqual(b);
    expect(r.onBus.at(-1)).toMatchObject({ reset: true, src: 'b' });
    expect(r.rebuilt()).toEqual(b);
    // and back: the primary's book as it is now, its changes while on standby included
    r.book('a', [[100, 0]], [[100.5, 4]]);
    r.switchTo('a');
    r.book('a', [[99, 2]], []);
    const a = {
      bids: [[99, 2]],
      asks: [
        [100.5, 4],
        [101, 1],
        [102, 1],
      ],
    };
    expect(r.pub.books.get('BTC-USD')!.view(100)).toEqual(a);
    expect(r.rebuilt()).toEqual(a);
    // the stored book a gateway starts from is that book too
    expect(r.pub.books.snapshot('BTC-USD')).toMatchObject({ reset: true, src: 'a', bids: a.bids, asks: a.asks });
  });

  it('publishes nothing from a feed that took over before its whole book was known, until that book comes', () => {
    const r = rig();
    r.book('a', [[100, 1]], [[101, 1]], true);
    r.switchTo('b');
    expect(r.book('b', [[200, 1]], [])).toBe(false); // a change to a book not known yet
    expect(r.onBus).toHaveLength(1);
    r.book('b', [[200, 2]], [[201, 1]], true);
    expect(r.onBus.map((t) => [t.src, t.reset === true, t.seq])).toEqual([
      ['a', true, 1],
      ['b', true, 1],
    ]);
    expect(r.rebuilt()).toEqual({ bids: [[200, 2]], asks: [[201, 1]] });
  });
});

/**
 * The trading status is the venue's too (Binance `HALT`, Coinbase `offline`, ...), and adapters
 * publish only its changes. Before, after a switch the replaced feed's status stayed: a symbol
 * halted on the venue that went quiet was shown halted while the venue that took over traded it,
 * and a status the standby feed reported meanwhile was lost.
 */
describe('trading status across a failover switch', () => {
  function statusRig() {
    let active = 'a';
    const bus = new MemoryBus();
    const statuses: { src: string; status?: string | undefined; code?: string | undefined; luld?: unknown }[] = [];
    bus.subscribe('md.>', (_s, payload) => {
      const t = decodeTick(payload);
      if (t.k === 'status') statuses.push({ src: t.src, status: t.status, code: t.code, ...(t.luld ? { luld: t.luld } : {}) });
    });
    const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, selector: { accept: (feed) => feed === active } });
    pubs.push(pub);
    let id = 0;
    const trade = (feed: string) => pub.publish(feed, { k: 'trade', sym: 'BTC-USD', id: String(++id), p: 100, s: 1, ts: T });
    const status = (feed: string, s: 'trading' | 'halted', code: string) => pub.publish(feed, { k: 'status', sym: 'BTC-USD', status: s, code, ts: T });
    const switchTo = (feed: string) => {
      active = feed;
      pub.sequencer.bumpEpoch('BTC-USD');
    };
    return { trade, status, switchTo, statuses };
  }

  it('publishes the status of the feed that takes over: trading without a report of its own, else its report', () => {
    const r = statusRig();
    r.trade('a');
    r.status('a', 'halted', 'HALT'); // the primary's venue halts the symbol
    r.trade('b'); // standby: not published
    r.switchTo('b');
    r.trade('b');
    expect(r.statuses).toEqual([
      { src: 'a', status: 'halted', code: 'HALT' },
      { src: 'b', status: 'trading' },
    ]);
    // the primary reports meanwhile (on standby): published when it takes the symbol back
    r.status('a', 'trading', 'TRADING');
    r.status('b', 'halted', 'offline');
    r.switchTo('a');
    r.trade('a');
    expect(r.statuses.slice(2)).toEqual([
      { src: 'b', status: 'halted', code: 'offline' },
      { src: 'a', status: 'trading', code: 'TRADING' },
    ]);
    // and to b again: the status b reported last
    r.switchTo('b');
    r.trade('b');
    expect(r.statuses.at(-1)).toEqual({ src: 'b', status: 'halted', code: 'offline' });
  });

  it('changes nothing without a switch: one feed, or a new epoch of the same feed', () => {
    const r = statusRig();
    r.trade('a');
    r.status('a', 'halted', 'HALT');
    r.switchTo('a');
    r.trade('a');
    expect(r.statuses).toEqual([{ src: 'a', status: 'halted', code: 'HALT' }]);
  });
});
