import { afterEach, describe, expect, it } from 'vitest';
import { closePublishers, ns, publisherRig, T0, trade } from '../helpers/publisher-rig.js';
import { tickToPayload } from '../../src/fanout/payloads.js';
import { decodeTick, encodeTick } from '../../src/codec/tick-codec.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import type { TickerTick } from '../../src/core/schema.js';

/**
 * docs/protocol.md#ticker: `bp` and `ap` are "absent before the first quote and while the ... side
 * is empty". Before, a symbol's ticker built from trades alone said `"bp":0,"ap":0`: a bid and an
 * ask of 0 on the wire.
 */
afterEach(closePublishers);

describe('a ticker before the first quote', () => {
  it('has no bp and ap until a quote gives them, and they follow the quote after', () => {
    const r = publisherRig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    const first = tickToPayload(r.lastTicker()!);
    expect(first).toMatchObject({ p: 100, v: 10 });
    expect(first).not.toHaveProperty('bp');
    expect(first).not.toHaveProperty('ap');
    r.pub.publish('alpaca', { k: 'quote', sym: 'AAPL', bp: 99.5, ts: ns(T0 + 2_000) });
    const bidOnly = tickToPayload(r.lastTicker()!);
    expect(bidOnly).toMatchObject({ bp: 99.5 });
    expect(bidOnly).not.toHaveProperty('ap');
    // the day emptied by a cancel keeps the quote's sides as they are, still no ask
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:1', ts: ns(T0 + 3_000) });
    expect(tickToPayload(r.lastTicker()!)).toMatchObject({ empty: true, bp: 99.5 });
    expect(tickToPayload(r.lastTicker()!)).not.toHaveProperty('ap');
  });

  it('a ticker taken up after a restart with bp/ap 0 (written by an earlier version) has no bid or ask', async () => {
    const lastValues = new MemoryLastValueStore();
    const ts = ns(T0 + 1_000);
    const stored: TickerTick = {
      k: 'ticker',
      sym: 'AAPL',
      src: 'alpaca',
      seq: 1,
      ep: 1,
      ts,
      rt: ts,
      p: 100,
      bp: 0,
      ap: 0,
      o: 100,
      h: 100,
      l: 100,
      v: 10,
      chg: 0,
      chgp: 0,
    };
    lastValues.put('ticker:AAPL', encodeTick(stored));
    const r = publisherRig({ lastValues });
    await r.pub.restore();
    r.pub.publish('alpaca', trade(T0 + 2_000, 101, 5, 'V:2'));
    const t = decodeTick((await lastValues.getMany(['ticker:AAPL']))[0]!);
    expect(t).toMatchObject({ k: 'ticker', p: 101, v: 15 });
    expect(t).not.toHaveProperty('bp');
    expect(t).not.toHaveProperty('ap');
  });
});
