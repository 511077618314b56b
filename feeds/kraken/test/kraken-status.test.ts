import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import type { TickInput } from '../../sdk/adapter.js';
import { startKrakenFake } from '../fake-server.js';
import type { KrakenFakeOptions, KrakenFakeServer } from '../fake-server.js';
import { KrakenFeed, KrakenOptionsSchema } from '../kraken-feed.js';
import { quietFor } from '../../../test/helpers/wait.js';

/**
 * Per-pair trading status from the `instrument` channel's `pairs[].status` (Spot Websockets v2,
 * instrument), combined with the exchange-wide `status` channel: a pair is trading only if both
 * let it. Fixture: the instrument page's published snapshot example; the other states are edge
 * cases built on it (the page lists them without examples).
 */
const DOC_SNAPSHOT = (JSON.parse(readFileSync(new URL('../fixtures/instrument-snapshot.json', import.meta.url), 'utf8')) as { frame: Record<string, any> })
  .frame;

type Status = Extract<TickInput, { k: 'status' }>;

describe('kraken per-pair trading status', () => {
  let h: AdapterHarness<KrakenFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async (symbols: string[], fake: KrakenFakeOptions = {}, extra: Record<string, unknown> = {}) => {
    h = await startHarness(
      () => startKrakenFake({ replayFixtures: false, pumpMs: 60_000, ...fake }),
      (p) => new KrakenFeed('kraken', KrakenOptionsSchema.parse({ url: p.url, symbols, backoff: { initialMs: 20, maxMs: 200 }, ...extra })),
    );
    return h;
  };
  const statuses = (x: AdapterHarness<KrakenFakeServer>): Status[] => x.ticks.filter((t): t is Status => t.k === 'status');
  const brief = (t: Status) => `${t.sym} ${t.status} ${t.code}`;
  const instrumentAsked = (x: AdapterHarness<KrakenFakeServer>) =>
    (x.provider.receivedJson() as { method: string; params: { channel: string } }[]).some((r) => r.method === 'subscribe' && r.params.channel === 'instrument');
  const systemIs = (x: AdapterHarness<KrakenFakeServer>, system: string) =>
    x.provider.broadcast({ channel: 'status', type: 'update', data: [{ api_version: 'v2', connection_id: 1, system, version: '2.0.0' }] });

  it('subscribes to the instrument channel once; the documented snapshot (an online pair) gives no status tick', async () => {
    const h = await start(['BTC-USD', 'ETH-USD']);
    await h.waitFor('instrument subscription', () => h.state === 'connected' && instrumentAsked(h));
    h.provider.broadcast(DOC_SNAPSHOT);
    await quietFor(200, 'no status for online pairs');
    expect(statuses(h)).toEqual([]);
    expect((h.provider.receivedJson() as { params: { channel: string } }[]).filter((r) => r.params.channel === 'instrument')).toEqual([
      { method: 'subscribe', params: { channel: 'instrument', snapshot: true }, req_id: 3 },
    ]);
    expect(h.counters.errors).toEqual([]);
  });

  it('a pair in cancel_only is halted from the snapshot on, and trading again once its update says online', async () => {
    const h = await start(['BTC-USD', 'ETH-USD'], { pairStatus: { 'BTC/USD': 'cancel_only' } });
    await h.waitFor('BTC-USD halted', () => statuses(h).length >= 1);
    expect(statuses(h)).toEqual([
      {
        k: 'status',
        sym: 'BTC-USD',
        status: 'halted',
        code: 'cancel_only',
        reason: 'Kraken pair cancel only: no new orders, no order matching',
        ts: expect.any(BigInt),
      },
    ]);
    h.provider.setPairStatus('BTC/USD', 'online');
    await h.waitFor('BTC-USD trading', () => statuses(h).length >= 2);
    expect(statuses(h)[1]).toEqual({ k: 'status', sym: 'BTC-USD', status: 'trading', code: 'online', ts: expect.any(BigInt) });
    // the same state again (a repeated update, a new snapshot) publishes nothing
    h.provider.setPairStatus('BTC/USD', 'online');
    h.provider.setPairStatus('ETH/USD', 'online');
    await quietFor(200, 'no repeated status');
    expect(statuses(h)).toHaveLength(2);
  });

  it('maps every state the instrument page lists: no matching is halted, and so are the undescribed ones (reduce_only included)', async () => {
    const h = await start(['BTC-USD']);
    await h.waitFor('instrument subscription', () => h.state === 'connected' && instrumentAsked(h));
    const expected: [string, string][] = [
      ['maintenance', 'halted'],
      ['online', 'trading'],
      ['post_only', 'halted'],
      ['limit_only', 'halted'],
      ['reduce_only', 'halted'],
      ['delisted', 'halted'],
      ['work_in_progress', 'halted'],
      ['cancel_only', 'halted'],
      ['online', 'trading'],
    ];
    for (const [state, status] of expected) {
      const n = statuses(h).length;
      h.provider.setPairStatus('BTC/USD', state);
      await h.waitFor(state, () => statuses(h).length > n);
      expect(statuses(h).at(-1)).toMatchObject({ sym: 'BTC-USD', status, code: state });
    }
    expect(statuses(h).find((t) => t.code === 'reduce_only')!.reason).toMatch(/only orders that reduce a position/);
    expect(statuses(h).find((t) => t.code === 'delisted')!.reason).toBe('Kraken pair delisted');
  });

  it('a state the page does not list is not shown as trading, and is logged once', async () => {
    const h = await start(['BTC-USD', 'ETH-USD'], { pairStatus: { 'BTC/USD': 'frozen', 'ETH/USD': 'frozen' } });
    await h.waitFor('both halted', () => statuses(h).length >= 2);
    expect(statuses(h).map(brief)).toEqual(['BTC-USD halted frozen', 'ETH-USD halted frozen']);
    expect(statuses(h)[0]!.reason).toMatch(/not documented/);
    expect(h.logs.filter((l) => l.level === 'warn' && /pair state frozen is not documented/.test(l.msg))).toHaveLength(1);
  });

  it('a pair trades only if both the exchange and the pair allow it', async () => {
    const h = await start(['BTC-USD', 'ETH-USD'], { system: 'maintenance', pairStatus: { 'BTC/USD': 'cancel_only' } });
    await h.waitFor('both halted by maintenance', () => statuses(h).length >= 2);
    expect(statuses(h).map(brief)).toEqual(['BTC-USD halted maintenance', 'ETH-USD halted maintenance']);
    // the exchange is back: ETH-USD trades, BTC-USD is still held by its own state
    systemIs(h, 'online');
    await h.waitFor('exchange online', () => statuses(h).length >= 4);
    expect(statuses(h).slice(2).map(brief)).toEqual(['BTC-USD halted cancel_only', 'ETH-USD trading online']);
    // the pair opens while the exchange is in post_only: still halted, by the exchange
    systemIs(h, 'post_only');
    await h.waitFor('exchange post_only', () => statuses(h).length >= 6);
    h.provider.setPairStatus('BTC/USD', 'online');
    await quietFor(200, 'the pair opening changes nothing while the exchange does no matching');
    expect(statuses(h).slice(4).map(brief)).toEqual(['BTC-USD halted post_only', 'ETH-USD halted post_only']);
    systemIs(h, 'online');
    await h.waitFor('both trading', () => statuses(h).length >= 8);
    expect(statuses(h).slice(6).map(brief)).toEqual(['BTC-USD trading online', 'ETH-USD trading online']);
  });

  it('the exchange back online before the instrument snapshot is read: a pair is not shown trading until its own state is known', async () => {
    const h = await start(['BTC-USD', 'ETH-USD'], { system: 'maintenance', pairStatus: { 'BTC/USD': 'cancel_only' }, holdInstrumentSnapshot: true });
    await h.waitFor('both halted by maintenance', () => statuses(h).length >= 2);
    await h.waitFor('instrument subscription', () => instrumentAsked(h));
    systemIs(h, 'online');
    await quietFor(200, 'no pair reopens on the exchange state alone while the pair states are unknown');
    expect(statuses(h).slice(2).map(brief)).toEqual([]);
    h.provider.sendInstrumentSnapshot();
    await h.waitFor('the snapshot read', () => statuses(h).length >= 4);
    expect(statuses(h).slice(2).map(brief)).toEqual(['BTC-USD halted cancel_only', 'ETH-USD trading online']);
  });

  it('an instrument subscription refused: the exchange state alone decides', async () => {
    const h = await start(['BTC-USD'], { system: 'maintenance', refuseInstrument: true });
    await h.waitFor('halted by maintenance', () => statuses(h).length >= 1);
    await h.waitFor('the refusal read', () => h.counters.errors.length > 0);
    systemIs(h, 'online');
    await h.waitFor('trading again', () => statuses(h).length >= 2);
    expect(statuses(h).map(brief)).toEqual(['BTC-USD halted maintenance', 'BTC-USD trading online']);
  });

  it('a pair subscribed later gets its state from the snapshot already read; an unsubscribed one gets none', async () => {
    const h = await start(['BTC-USD'], { pairStatus: { 'SOL/USD': 'delisted', 'ETH/USD': 'post_only' }, instrumentPairs: ['BTC/USD', 'ETH/USD', 'SOL/USD'] });
    await h.waitFor('instrument subscription', () => h.state === 'connected' && instrumentAsked(h));
    await quietFor(200, 'BTC-USD online: no status');
    expect(statuses(h)).toEqual([]);
    await h.adapter.subscribe(['SOL-USD']);
    await h.waitFor('SOL-USD halted', () => statuses(h).length >= 1);
    expect(statuses(h).map(brief)).toEqual(['SOL-USD halted delisted']);
    await h.adapter.unsubscribe(['SOL-USD']);
    h.provider.setPairStatus('SOL/USD', 'online');
    await quietFor(200, 'no status for a pair no longer subscribed');
    expect(statuses(h).map(brief)).toEqual(['SOL-USD halted delisted']);
    // the engine still shows SOL-USD halted (its last status): subscribed again, now online, it is
    // published trading. Before, the adapter forgot what it had published and took online for no change
    await h.adapter.subscribe(['SOL-USD']);
    await h.waitFor('SOL-USD trading again', () => statuses(h).length >= 2);
    expect(statuses(h).map(brief)).toEqual(['SOL-USD halted delisted', 'SOL-USD trading online']);
  });

  it('survives a reconnect: the new snapshot republishes only what changed', async () => {
    const h = await start(['BTC-USD'], { pairStatus: { 'BTC/USD': 'limit_only' } });
    await h.waitFor('halted', () => statuses(h).length >= 1);
    h.provider.setPairStatus('BTC/USD', 'limit_only');
    for (const c of h.provider.conns) c.ws.terminate();
    await h.waitFor('second connection', () => h.provider.totalConnections >= 2 && h.state === 'connected' && instrumentAsked(h));
    await quietFor(200, 'the same state on the new connection');
    expect(statuses(h).map(brief)).toEqual(['BTC-USD halted limit_only']);
  });

  it('with pairStatus: false the instrument channel is not asked for and only the exchange state counts', async () => {
    const h = await start(['BTC-USD'], { pairStatus: { 'BTC/USD': 'cancel_only' } }, { pairStatus: false });
    await h.waitFor('connected', () => h.state === 'connected');
    await quietFor(200, 'nothing');
    expect(instrumentAsked(h)).toBe(false);
    expect(statuses(h)).toEqual([]);
  });

  it('an exchange state named like an Object property ("toString") is not taken for a listed one', async () => {
    const h = await start(['BTC-USD']);
    await h.waitFor('connected', () => h.state === 'connected');
    systemIs(h, 'toString');
    systemIs(h, 'constructor');
    await quietFor(200, 'no status for an unlisted state');
    expect(statuses(h)).toEqual([]);
  });
});
