import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { OandaFeed, OandaOptionsSchema } from '../oanda-feed.js';
import { startOandaFake } from '../fake-server.js';
import type { OandaFakeServer } from '../fake-server.js';
import { quietFor } from '../../../test/helpers/wait.js';

const DOC_LINES = readFileSync(new URL('../fixtures/doc-stream-example.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.trim());
const TOKEN = 'oanda-test-token';
const ACCOUNT = '101-004-1234567-001';
const creds = { token: TOKEN, tokenEnv: 'OANDA_API_TOKEN', accountId: ACCOUNT };
const options = (url: string, extra: Record<string, unknown> = {}) =>
  OandaOptionsSchema.parse({ url, symbols: ['EUR-USD', 'USD-JPY'], backoff: { initialMs: 20, maxMs: 200 }, ...extra });
const fake =
  (extra: Record<string, unknown> = {}) =>
  () =>
    startOandaFake({ token: TOKEN, accountId: ACCOUNT, ...extra });

runAdapterConformance({
  name: 'oanda',
  startProvider: fake(),
  createAdapter: (p) => new OandaFeed('oanda', options(p.url), creds),
  symbols: ['EUR-USD', 'USD-JPY'],
  kinds: ['quote'],
});

describe('oanda adapter', () => {
  let h: AdapterHarness<OandaFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('requests the pricing stream with a bearer token and normalizes the recorded lines', async () => {
    h = await startHarness(fake({ pumpMs: 60_000, heartbeatMs: 60_000 }), (p) => new OandaFeed('oanda', options(p.url), creds));
    await h.waitFor('3 fixture quotes', () => h!.ticks.length >= 3);
    const req = h.provider.requests[0]!;
    expect(req.url).toBe(`/v3/accounts/${ACCOUNT}/pricing/stream?instruments=EUR_USD%2CUSD_JPY`);
    expect(req.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(h.ticks[0]).toEqual({ k: 'quote', sym: 'EUR-USD', bp: 1.07612, bs: 1_000_000, ap: 1.07626, as: 1_000_000, ts: 1718026201123456789n });
    // UNIX-seconds time format, fractional
    expect(h.ticks[1]).toEqual({ k: 'quote', sym: 'USD-JPY', bp: 157.021, bs: 500_000, ap: 157.035, as: 500_000, ts: 1718026202500000000n });
    // no bid liquidity: the bid side is absent (the closeout bid is never a tradeable price)
    expect(h.ticks[2]).toEqual({ k: 'quote', sym: 'EUR-USD', ap: 1.0763, as: 250_000, ts: 1718026203000000000n });
    expect(h.counters.messages).toBeGreaterThanOrEqual(4); // the heartbeat counts as a message
  });

  it('stays connected on HEARTBEAT lines alone', async () => {
    h = await startHarness(fake({ heartbeatMs: 40 }), (p) => new OandaFeed('oanda', options(p.url, { staleAfterMs: 1500 }), creds));
    await h.waitFor('connected', () => h!.state === 'connected');
    h.provider.pause(); // prices stop, heartbeats continue
    const before = h.counters.messages;
    await quietFor(2500, 'no stale state past staleAfterMs while only heartbeats arrive');
    expect(h.counters.messages).toBeGreaterThan(before);
    expect(h.states.some((s) => s.state === 'stale')).toBe(false);
    h.provider.resume();
  });

  it('goes stale and reconnects when neither prices nor heartbeats arrive', async () => {
    h = await startHarness(fake({ heartbeatMs: 60_000 }), (p) => new OandaFeed('oanda', options(p.url, { staleAfterMs: 200 }), creds));
    await h.waitFor('connected', () => h!.state === 'connected');
    h.provider.pause();
    await h.waitFor('stale', () => h!.states.some((s) => s.state === 'stale'));
    h.provider.resume();
    await h.waitFor('a new stream', () => h!.provider.totalConnections >= 2 && h!.state === 'connected');
  });

  it('maps HTTP 401 to auth_failed naming the token variable', async () => {
    h = await startHarness(fake(), (p) => new OandaFeed('oanda', options(p.url), { ...creds, token: 'bad' }));
    await h.waitFor('auth_failed', () => h!.state === 'auth_failed');
    expect(h.states.at(-1)!.detail).toMatch(/HTTP 401 "Insufficient authorization.*OANDA_API_TOKEN/);
  });

  it('maps HTTP 400 (wrong account) to error naming the key', async () => {
    h = await startHarness(fake(), (p) => new OandaFeed('oanda', options(p.url), { ...creds, accountId: '999' }));
    await h.waitFor('error', () => h!.state === 'error');
    expect(h.states.at(-1)!.detail).toMatch(/HTTP 400.*feeds\.oanda\.accountId/);
  });

  it('reconnects with the new instrument list when symbols are added', async () => {
    h = await startHarness(fake(), (p) => new OandaFeed('oanda', options(p.url, { symbols: ['EUR-USD'] }), creds));
    await h.waitFor('connected', () => h!.state === 'connected');
    await h.adapter.subscribe(['GBP-USD']);
    await h.waitFor('GBP-USD quotes', () => h!.ticks.some((t) => t.sym === 'GBP-USD'));
    expect(h.provider.requests.at(-1)!.url).toMatch(/instruments=EUR_USD%2CGBP_USD$/);
  });

  it('accepts price lines without a type field, as in the docs stream example', async () => {
    h = await startHarness(
      fake({ pumpMs: 60_000, heartbeatMs: 50, replayFixtures: false }),
      (p) => new OandaFeed('oanda', options(p.url, { symbols: ['EUR-USD', 'USD-CAD'] }), creds),
    );
    await h.waitFor('connected', () => h!.state === 'connected' && h!.provider.streams.size === 1);
    const stream = [...h.provider.streams][0]!;
    for (const l of DOC_LINES) stream.line(l);
    await h.waitFor('3 quotes', () => h!.ticks.length >= 3);
    // liquidity is in units of the base currency; times keep all nine digits
    expect(h.ticks).toEqual([
      { k: 'quote', sym: 'EUR-USD', bp: 1.13015, bs: 10_000_000, ap: 1.13028, as: 10_000_000, ts: 1474383947960449532n },
      { k: 'quote', sym: 'USD-CAD', bp: 1.33985, bs: 10_000_000, ap: 1.34004, as: 10_000_000, ts: 1474383948157162748n },
      { k: 'quote', sym: 'EUR-USD', bp: 1.130151234, bs: 250_000_000, ap: 1.130281234, as: 1, ts: 1474383951000000001n },
    ]);
    // the unknown line type is ignored without an error
    expect(h.counters.errors).toEqual([]);
  });
});
