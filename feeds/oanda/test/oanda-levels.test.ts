import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { FakeHttpStreamServer } from '../../sdk/testing/fake-http-stream-server.js';
import { OandaFeed, OandaOptionsSchema } from '../oanda-feed.js';
import { startOandaFake } from '../fake-server.js';
import type { OandaFakeServer } from '../fake-server.js';

/**
 * OANDA v20 Pricing Definitions, ClientPrice `bids`/`asks`: "The list of prices and liquidity
 * available on the Instrument's bid [ask] side", each a PriceBucket ("a price available for an
 * amount of liquidity"). The list's order is not documented, so the quote's side is the best
 * bucket by price (the highest bid, the lowest ask), wherever it stands in the list.
 * And HTTP errors whose body is not OANDA's JSON (a proxy's HTML page) are reported short.
 */
const TOKEN = 'oanda-test-token';
const ACCOUNT = '101-004-1234567-001';
const creds = { token: TOKEN, tokenEnv: 'OANDA_API_TOKEN', accountId: ACCOUNT };
const options = (url: string) => OandaOptionsSchema.parse({ url, symbols: ['EUR-USD'], backoff: { initialMs: 20, maxMs: 200 } });

/** The adapter on a fake OANDA, once its pricing stream is open. */
async function openStream(): Promise<AdapterHarness<OandaFakeServer>> {
  const h = await startHarness(
    () => startOandaFake({ token: TOKEN, accountId: ACCOUNT, pumpMs: 60_000, heartbeatMs: 60_000, replayFixtures: false }),
    (p) => new OandaFeed('oanda', options(p.url), creds),
  );
  await h.waitFor('stream open', () => h.provider.streams.size > 0);
  return h;
}
/** A tradeable EUR_USD price line without its buckets. */
const PRICE = { type: 'PRICE', time: '2024-06-10T13:30:01.000000001Z', instrument: 'EUR_USD', tradeable: true };

describe('oanda price buckets and error bodies', () => {
  let h: AdapterHarness<OandaFakeServer> | undefined;
  let e: AdapterHarness<FakeHttpStreamServer<{ n: number }>> | undefined;
  afterEach(async () => {
    await h?.close();
    await e?.close();
    h = undefined;
    e = undefined;
  });

  it('takes the best bucket of each side by price, whatever the order of the list', async () => {
    h = await openStream();
    for (const s of h.provider.streams)
      s.line({
        ...PRICE,
        // worst first: a larger amount at a worse price
        bids: [
          { price: '1.07608', liquidity: 5_000_000 },
          { price: '1.07612', liquidity: 1_000_000 },
          { price: '1.07610', liquidity: 2_000_000 },
        ],
        asks: [
          { price: '1.07630', liquidity: 5_000_000 },
          { price: '1.07626', liquidity: 1_000_000 },
        ],
        closeoutBid: '1.07608',
        closeoutAsk: '1.07630',
      });
    await h.waitFor('a quote', () => h!.ticks.length >= 1);
    expect(h.ticks[0]).toEqual({ k: 'quote', sym: 'EUR-USD', bp: 1.07612, bs: 1_000_000, ap: 1.07626, as: 1_000_000, ts: 1718026201000000001n });
  });

  it('reads liquidity given as a decimal string (Pricing Common Definitions, PriceBucket: "integer or decimal if available")', async () => {
    h = await openStream();
    for (const s of h.provider.streams)
      s.line({
        ...PRICE,
        bids: [{ price: '1.07612', liquidity: '2500000.5' }],
        asks: [{ price: '1.07626', liquidity: 1_000_000 }],
      });
    await h.waitFor('a quote', () => h!.ticks.length >= 1);
    expect(h.ticks[0]).toEqual({ k: 'quote', sym: 'EUR-USD', bp: 1.07612, bs: 2_500_000.5, ap: 1.07626, as: 1_000_000, ts: 1718026201000000001n });
  });

  it('an HTTP error with an HTML body is reported in one short line, not the whole page', async () => {
    const page = `<!DOCTYPE html>\n<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n${'<p>upstream unavailable</p>\n'.repeat(80)}</body>\n</html>\n`;
    e = await startHarness(
      () => FakeHttpStreamServer.start<{ n: number }>({ initialState: () => ({ n: 0 }), check: () => ({ status: 502, body: page }) }),
      (p) => new OandaFeed('oanda', options(p.url), creds),
    );
    await e.waitFor('reconnecting after the 502', () => e!.states.some((s) => s.state === 'reconnecting'));
    const detail = e.states.find((s) => s.state === 'reconnecting')!.detail ?? '';
    expect(detail).toMatch(/^oanda: HTTP 502 "<!DOCTYPE html> <html> <head><title>502 Bad Gateway<\/title>/);
    expect(detail).not.toContain('\n');
    expect(detail.length).toBeLessThan(400);
  });
});
