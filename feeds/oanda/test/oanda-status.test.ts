import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { OandaFeed, OandaOptionsSchema } from '../oanda-feed.js';
import { startOandaFake } from '../fake-server.js';
import type { OandaFakeServer } from '../fake-server.js';

/**
 * OANDA ClientPrice `tradeable` as the symbol's trading status, and empty book sides
 * (v20 Pricing Definitions: bids/asks "may be empty"; the closeout prices are "never used to
 * open a new position"). Lines follow the shape of the documented PRICE example.
 */
const TOKEN = 'oanda-test-token';
const ACCOUNT = '101-004-1234567-001';
const creds = { token: TOKEN, accountId: ACCOUNT };
const options = (url: string) => OandaOptionsSchema.parse({ url, symbols: ['EUR-USD'], backoff: { initialMs: 20, maxMs: 200 } });

const price = (time: string, tradeable: boolean, bids: { price: string; liquidity: number }[], asks: { price: string; liquidity: number }[]) => ({
  type: 'PRICE',
  time,
  instrument: 'EUR_USD',
  status: tradeable ? 'tradeable' : 'non-tradeable',
  tradeable,
  bids,
  asks,
  closeoutBid: '1.07600',
  closeoutAsk: '1.07640',
});

describe('oanda trading status and empty sides', () => {
  let h: AdapterHarness<OandaFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('tradeable false becomes a halted status; an empty side is absent, never a closeout price', async () => {
    h = await startHarness(
      () => startOandaFake({ token: TOKEN, accountId: ACCOUNT, pumpMs: 60_000, heartbeatMs: 60_000, replayFixtures: false }),
      (p) => new OandaFeed('oanda', options(p.url), creds),
    );
    await h.waitFor('stream open', () => h!.provider.streams.size > 0);
    const line = (v: unknown) => {
      for (const s of h!.provider.streams) s.line(v);
    };
    line(price('2024-06-10T13:30:01Z', true, [{ price: '1.07612', liquidity: 1_000_000 }], [{ price: '1.07626', liquidity: 1_000_000 }]));
    line(price('2024-06-10T13:30:02Z', false, [], []));
    line(price('2024-06-10T13:30:03Z', false, [], [{ price: '1.07630', liquidity: 250_000 }]));
    line(price('2024-06-10T13:30:04Z', true, [{ price: '1.07613', liquidity: 500_000 }], []));
    await h.waitFor('5 ticks', () => h!.ticks.length >= 5);
    expect(h.ticks).toEqual([
      { k: 'quote', sym: 'EUR-USD', bp: 1.07612, bs: 1_000_000, ap: 1.07626, as: 1_000_000, ts: 1718026201000000000n },
      { k: 'status', sym: 'EUR-USD', status: 'halted', reason: 'not tradeable', ts: 1718026202000000000n },
      // both sides empty: no quote at all
      { k: 'quote', sym: 'EUR-USD', ap: 1.0763, as: 250_000, ts: 1718026203000000000n },
      { k: 'status', sym: 'EUR-USD', status: 'trading', ts: 1718026204000000000n },
      { k: 'quote', sym: 'EUR-USD', bp: 1.07613, bs: 500_000, ts: 1718026204000000000n },
    ]);
  });
});
