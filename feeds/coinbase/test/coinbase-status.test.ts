import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import type { TickInput } from '../../sdk/adapter.js';
import { startCoinbaseFake } from '../fake-server.js';
import type { CoinbaseFakeOptions, CoinbaseFakeServer } from '../fake-server.js';
import { CoinbaseFeed, CoinbaseOptionsSchema } from '../coinbase-feed.js';
import { isoToNs } from '../../sdk/time.js';
import { quietFor } from '../../../test/helpers/wait.js';

/**
 * Per-product trading status from the Advanced Trade `status` channel ("WebSocket Channels" >
 * Status Channel): `online` is trading, any other `status` halted (the page documents no other
 * value), `status_message` the reason. Fixture: the page's published example (an online product).
 */
const DOC_STATUS = (JSON.parse(readFileSync(new URL('../fixtures/status.json', import.meta.url), 'utf8')) as { frame: Record<string, any> }).frame;

type Status = Extract<TickInput, { k: 'status' }>;

describe('coinbase per-product trading status', () => {
  let h: AdapterHarness<CoinbaseFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async (fake: CoinbaseFakeOptions = {}, extra: Record<string, unknown> = {}) => {
    h = await startHarness(
      () => startCoinbaseFake({ replayFixtures: false, pumpMs: 60_000, ...fake }),
      (p) =>
        new CoinbaseFeed(
          'coinbase',
          CoinbaseOptionsSchema.parse({ url: p.url, symbols: ['BTC-USD', 'ETH-USD'], backoff: { initialMs: 20, maxMs: 200 }, ...extra }),
        ),
    );
    return h;
  };
  const statuses = (x: AdapterHarness<CoinbaseFakeServer>): Status[] => x.ticks.filter((t): t is Status => t.k === 'status');
  const statusSubscribed = (x: AdapterHarness<CoinbaseFakeServer>) =>
    (x.provider.receivedJson() as { type: string; channel: string; product_ids?: string[] }[]).some(
      (m) => m.type === 'subscribe' && m.channel === 'status' && m.product_ids?.join() === 'BTC-USD,ETH-USD',
    );
  const next = (x: AdapterHarness<CoinbaseFakeServer>) => {
    const conn = [...x.provider.conns][0]!;
    return conn.state.seq + 1;
  };

  it("subscribes to the status channel for the feed's products; the documented example (online) gives no status tick", async () => {
    const h = await start();
    await h.waitFor('status subscription', () => h.state === 'connected' && statusSubscribed(h));
    const conn = [...h.provider.conns][0]!;
    conn.state.seq += 1;
    conn.send({ ...DOC_STATUS, sequence_num: conn.state.seq });
    await quietFor(200, 'no status for an online product');
    expect(statuses(h)).toEqual([]);
    expect(h.counters.errors).toEqual([]);
    expect(h.counters.gaps).toBe(0);
  });

  it('a product not online is halted with its status_message; online again is trading; only changes are published', async () => {
    const h = await start({ productStatus: { 'ETH-USD': 'delisted' } });
    await h.waitFor('ETH-USD halted', () => statuses(h).length >= 1);
    expect(statuses(h)).toEqual([
      { k: 'status', sym: 'ETH-USD', status: 'halted', code: 'delisted', reason: 'Coinbase product status delisted', ts: expect.any(BigInt) },
    ]);
    h.provider.setProductStatus('BTC-USD', 'offline', 'Trading is temporarily disabled');
    await h.waitFor('BTC-USD halted', () => statuses(h).length >= 2);
    expect(statuses(h)[1]).toEqual({
      k: 'status',
      sym: 'BTC-USD',
      status: 'halted',
      code: 'offline',
      reason: 'Trading is temporarily disabled',
      ts: expect.any(BigInt),
    });
    // Coinbase repeats the snapshot "on a preset interval": nothing new
    h.provider.resendStatus();
    h.provider.resendStatus();
    await quietFor(200, 'repeated snapshots');
    expect(statuses(h)).toHaveLength(2);
    h.provider.setProductStatus('BTC-USD', 'online');
    await h.waitFor('BTC-USD trading', () => statuses(h).length >= 3);
    expect(statuses(h)[2]).toEqual({ k: 'status', sym: 'BTC-USD', status: 'trading', code: 'online', ts: expect.any(BigInt) });
  });

  it('a product without a status string is reported and left as it was; products not ours are ignored', async () => {
    const h = await start();
    await h.waitFor('status subscription', () => h.state === 'connected' && statusSubscribed(h));
    const conn = [...h.provider.conns][0]!;
    const product = (id: string, status: unknown) => ({ ...DOC_STATUS.events[0].products[0], id, status });
    conn.state.seq = next(h);
    conn.send({
      ...DOC_STATUS,
      sequence_num: conn.state.seq,
      events: [{ type: 'update', products: [product('BTC-USD', null), product('SOL-USD', 'offline'), product('ETH-USD', 'cancel_only')] }],
    });
    await h.waitFor('ETH-USD halted', () => statuses(h).length >= 1);
    await quietFor(100, 'nothing else');
    expect(statuses(h).map((t) => `${t.sym} ${t.status} ${t.code}`)).toEqual(['ETH-USD halted cancel_only']);
    // stamped with the message's timestamp, exactly
    expect(statuses(h)[0]!.ts).toBe(isoToNs(DOC_STATUS.timestamp));
    expect(statuses(h)[0]!.ts).toBe(1675974589753424311n);
    expect(h.counters.errors).toEqual(['coinbase status BTC-USD: no status (null); its trading status is left as it was']);
  });

  it('a late status message (sequence_num not above the last) is skipped: it is older than the one applied', async () => {
    const h = await start({ productStatus: { 'BTC-USD': 'offline' } });
    await h.waitFor('BTC-USD halted', () => statuses(h).length >= 1);
    h.provider.setProductStatus('BTC-USD', 'online');
    await h.waitFor('BTC-USD trading', () => statuses(h).length >= 2);
    const conn = [...h.provider.conns][0]!;
    conn.send({ ...DOC_STATUS, sequence_num: 1, events: [{ type: 'snapshot', products: [{ ...DOC_STATUS.events[0].products[0], status: 'offline' }] }] });
    await quietFor(200, 'the late message changes nothing');
    expect(statuses(h).map((t) => `${t.sym} ${t.status}`)).toEqual(['BTC-USD halted', 'BTC-USD trading']);
  });

  // The engine keeps a symbol's last published status (status:SYM, the ticker's `status`) after the
  // feed lets the symbol go. The adapter forgot it, so when the product came back online and was
  // subscribed again, the snapshot's `online` looked like no change: the symbol stayed halted.
  it('a product halted, unsubscribed, then subscribed again while online is published trading again', async () => {
    const h = await start({ productStatus: { 'ETH-USD': 'offline' } });
    await h.waitFor('ETH-USD halted', () => statuses(h).length >= 1);
    await h.adapter.unsubscribe(['ETH-USD']);
    h.provider.setProductStatus('ETH-USD', 'online');
    await h.adapter.subscribe(['ETH-USD']);
    await h.waitFor('ETH-USD trading again', () => statuses(h).length >= 2);
    expect(statuses(h).map((t) => `${t.sym} ${t.status} ${t.code}`)).toEqual(['ETH-USD halted offline', 'ETH-USD trading online']);
  });

  it('an unsubscribed product gets no status; with status: false the channel is not subscribed', async () => {
    const h = await start({ productStatus: { 'ETH-USD': 'offline' } });
    await h.waitFor('ETH-USD halted', () => statuses(h).length >= 1);
    await h.adapter.unsubscribe(['ETH-USD']);
    await h.waitFor('status unsubscribed', () =>
      (h.provider.receivedJson() as { type: string; channel: string }[]).some((m) => m.type === 'unsubscribe' && m.channel === 'status'),
    );
    h.provider.resendStatus();
    await quietFor(200, 'nothing for ETH-USD');
    expect(statuses(h)).toHaveLength(1);
    await h.close();

    const off = await start({ productStatus: { 'ETH-USD': 'offline' } }, { status: false });
    await off.waitFor('connected', () => off.state === 'connected');
    await quietFor(200, 'no status');
    expect((off.provider.receivedJson() as { channel: string }[]).some((m) => m.channel === 'status')).toBe(false);
    expect(statuses(off)).toEqual([]);
  });
});
