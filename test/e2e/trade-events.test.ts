import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startAlpacaFake } from '../../feeds/alpaca/fake-server.js';
import type { AlpacaFakeServer } from '../../feeds/alpaca/fake-server.js';
import { startNats } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Issue #12 items 4, 5 and 7 end to end: the Alpaca adapter against its fake server, the engine
 * (embedded, and feed and gateway as separate engines over NATS), and a protocol-v1 client.
 * Corrections and cancels arrive on trade:SYM as their own item ops, in seq order with the
 * trades; the ticker and bars are recomputed; halts and LULD bands arrive on status:SYM and on
 * the ticker; provider minute bars are the only closed bars of their interval.
 */
const KEY = 'PKE2E';
const SECRET = 'e2e-secret';
const env = { AK: KEY, AS: SECRET };
const ALL_CHANNELS = ['trades', 'quotes', 'bars', 'statuses', 'lulds'];
const feedsFile = (url: string, channels: string[]) => ({
  feeds: {
    alpaca: {
      url,
      symbols: ['AAPL', 'MSFT'],
      keyEnv: 'AK',
      secretEnv: 'AS',
      channels,
      backoff: { initialMs: 20, maxMs: 200 },
    },
  },
  run: ['alpaca'],
});

type Mode = 'embedded' | 'nats';

describe.each<Mode>(['embedded', 'nats'])('corrections, cancels, status and provider bars reach clients (%s)', (mode) => {
  let nats: Awaited<ReturnType<typeof startNats>> | undefined;
  const engines: Engine[] = [];
  let fake: AlpacaFakeServer | undefined;
  let client: TestClient | undefined;

  beforeAll(async () => {
    if (mode === 'nats') nats = await startNats({ jetstream: false });
  }, 60_000);
  afterAll(async () => {
    await nats?.destroy();
  });
  afterEach(async () => {
    client?.close();
    for (const e of engines.splice(0).reverse()) await e.close();
    await fake?.close();
    client = undefined;
    fake = undefined;
  });

  async function start(channels = ALL_CHANNELS): Promise<number> {
    fake = await startAlpacaFake({ key: KEY, secret: SECRET, pumpMs: 600_000, replayFixtures: false });
    if (mode === 'embedded') {
      const e = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' } }, { env, feedsFile: feedsFile(fake.url, channels) });
      engines.push(e);
      return e.port;
    }
    const gateway = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' }, natsUrl: nats!.url },
      { env: {}, roles: { gateway: true, feeds: [] } },
    );
    engines.push(gateway);
    engines.push(
      await startEngine({ log: { level: 'silent' }, natsUrl: nats!.url }, { env, roles: { gateway: false }, feedsFile: feedsFile(fake.url, channels) }),
    );
    return gateway.port;
  }

  /** Push a probe trade until the client sees one: the whole path (feed, bus, gateway) is live. */
  async function probe(c: TestClient, sym: string, at?: string): Promise<void> {
    const ch = `trade:${sym}`;
    let i = 0;
    const timer = setInterval(
      () => fake!.push([{ T: 't', S: sym, i: 900_000 + ++i, x: 'V', p: 100, s: 1, t: at ?? new Date().toISOString(), c: ['@'], z: 'C' }]),
      100,
    );
    try {
      await c.waitFor((f) => f.op === 'data' && f.ch === ch, 20_000);
    } finally {
      clearInterval(timer);
    }
  }

  it('a correction, a cancel, a halt and a LULD band: items on trade:AAPL, a recomputed ticker, status:AAPL', async () => {
    const port = await start();
    client = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, { encoding: mode === 'nats' ? 'msgpack' : 'json' });
    await client.waitFor((f) => f.op === 'welcome');
    const ack = await client.request({
      op: 'subscribe',
      id: 1,
      channels: ['trade:AAPL', 'ticker:AAPL', 'status:AAPL', 'bar.1m:AAPL'],
      throttle: 0,
      snapshot: false,
    });
    expect(ack.rejected).toEqual([]);
    await probe(client, 'AAPL');
    const from = client.frames.length;
    const t = new Date().toISOString();
    fake!.push([
      { T: 't', S: 'AAPL', i: 11, x: 'V', p: 100, s: 1, t, c: ['@'], z: 'C' },
      { T: 't', S: 'AAPL', i: 12, x: 'V', p: 105, s: 10, t, c: ['@'], z: 'C' },
      { T: 't', S: 'AAPL', i: 13, x: 'V', p: 101, s: 1, t, c: ['@'], z: 'C' },
    ]);
    fake!.push([{ T: 'c', S: 'AAPL', x: 'V', oi: 13, op: 101, os: 1, oc: ['@'], ci: 14, cp: 102, cs: 20, cc: ['@'], z: 'C', t }]);
    fake!.push([{ T: 'x', S: 'AAPL', i: 12, x: 'V', p: 105, s: 10, a: 'C', z: 'C', t }]);
    fake!.push([{ T: 's', S: 'AAPL', sc: 'H', sm: 'Trading Halt', rc: 'T1', rm: 'News Pending', t, z: 'C' }]);
    fake!.push([{ T: 'l', S: 'AAPL', u: 110, d: 90, i: 'B', t, z: 'C' }]);

    const cancel = await client.waitFor((f) => f.ch === 'trade:AAPL' && f.op === 'cancel', 15_000, from);
    const onTrade = client.frames.slice(from).filter((f) => f.ch === 'trade:AAPL' && f.op !== 'batch');
    // drop probe trades still in flight, keep the scenario in order
    // trade ids are venue-qualified (<x>:<i>); a correction's ref names its trade the same way
    const scenario = onTrade.filter((f) => f.op !== 'data' || ['V:11', 'V:12', 'V:13'].includes(f.d.id as string));
    expect(scenario.map((f) => [f.op, f.d.id ?? null, f.d.ref ?? null])).toEqual([
      ['data', 'V:11', null],
      ['data', 'V:12', null],
      ['data', 'V:13', null],
      ['correction', 'V:14', 'V:13'],
      ['cancel', null, 'V:12'],
    ]);
    const correction = scenario[3]!;
    expect(correction.d).toMatchObject({ ref: 'V:13', id: 'V:14', p: 102, s: 20, src: 'alpaca', applied: true, venue: 'V' });
    expect(cancel.d).toMatchObject({ ref: 'V:12', src: 'alpaca', applied: true });
    expect(typeof cancel.d.t).toBe('number');
    // one seq counter for every item on the channel
    const seqs = onTrade.map((f) => f.seq as number);
    seqs.forEach((s, i) => i > 0 && expect(s).toBe(seqs[i - 1]! + 1));

    // the ticker without the cancelled trade and with the corrected one: high 102, last 102
    const probes = client.frames.filter((f) => f.ch === 'trade:AAPL' && f.op === 'data' && Number(String(f.d.id).slice(2)) >= 900_000);
    const volume = probes.length + 1 + 20;
    const ticker = await client.waitFor((f) => f.ch === 'ticker:AAPL' && f.d.v === volume && f.d.h === 102, 15_000, from);
    expect(ticker.d).toMatchObject({ p: 102, h: 102 });
    // the halt, with the LULD band merged in, on status:AAPL; the ticker says halted too
    const status = await client.waitFor((f) => f.ch === 'status:AAPL' && f.d.luld !== undefined, 15_000, from);
    expect(status.d).toMatchObject({ status: 'halted', code: 'H', reason: 'Trading Halt: News Pending', luld: { up: 110, down: 90 }, src: 'alpaca' });
    await client.waitFor((f) => f.ch === 'ticker:AAPL' && f.d.status === 'halted', 15_000, from);
    // the open minute bar was rebuilt without the cancelled trade (its high is 102, not 105)
    const bars = client.frames.filter((f) => f.ch === 'bar.1m:AAPL' && f.op === 'data');
    expect(bars.at(-1)!.d).toMatchObject({ h: 102, closed: false });
    expect(client.frames.some((f) => f.op === 'error')).toBe(false);
  }, 60_000);

  it('an odd lot (condition I) reaches trade:AAPL flagged volumeOnly; the ticker counts its size but keeps the last price and high', async () => {
    const port = await start(['trades']);
    client = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, { encoding: mode === 'nats' ? 'msgpack' : 'json' });
    await client.waitFor((f) => f.op === 'welcome');
    const ack = await client.request({ op: 'subscribe', id: 1, channels: ['trade:AAPL', 'ticker:AAPL'], throttle: 0, snapshot: false });
    expect(ack.rejected).toEqual([]);
    await probe(client, 'AAPL');
    const from = client.frames.length;
    const t = new Date().toISOString();
    fake!.push([
      { T: 't', S: 'AAPL', i: 21, x: 'V', p: 100, s: 100, t, c: ['@'], z: 'C' },
      { T: 't', S: 'AAPL', i: 22, x: 'V', p: 140, s: 7, t, c: ['@', 'I'], z: 'C' },
    ]);
    const odd = await client.waitFor((f) => f.ch === 'trade:AAPL' && f.op === 'data' && f.d.id === 'V:22', 15_000, from);
    expect(odd.d).toMatchObject({ id: 'V:22', p: 140, s: 7, volumeOnly: true, src: 'alpaca' });
    const probes = client.frames.filter((f) => f.ch === 'trade:AAPL' && f.op === 'data' && Number(String(f.d.id).slice(2)) >= 900_000);
    const ticker = await client.waitFor((f) => f.ch === 'ticker:AAPL' && f.d.v === probes.length + 107, 15_000, from);
    expect(ticker.d).toMatchObject({ p: 100, h: 100 });
  }, 60_000);

  it('provider minute bars and trades: exactly one closed bar.1m per interval, the provider one', async () => {
    const port = await start(['trades', 'quotes', 'bars']);
    client = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, { encoding: 'json' });
    await client.waitFor((f) => f.op === 'welcome');
    await client.request({ op: 'subscribe', id: 1, channels: ['trade:MSFT', 'bar.1m:MSFT'], throttle: 0, snapshot: false });
    await probe(client, 'MSFT', '2024-06-10T13:29:00Z'); // before the minutes below: bars follow event time
    const trade = (i: number, p: number, t: string) => ({ T: 't', S: 'MSFT', i, x: 'V', p, s: 100, t, c: ['@'], z: 'C' });
    const bar = (t: string, v: number) => ({ T: 'b', S: 'MSFT', o: 415, h: 416, l: 414, c: 415.5, v, t, n: 461, vw: 415.2 });
    // minute 13:30: two trades; a trade at 13:31 ends it for the engine; then Alpaca's bar for 13:30
    fake!.push([trade(1, 415, '2024-06-10T13:30:01Z'), trade(2, 416, '2024-06-10T13:30:30Z')]);
    fake!.push([trade(3, 415.5, '2024-06-10T13:31:05Z')]);
    fake!.push([bar('2024-06-10T13:30:00Z', 49_378)]);
    // minute 13:31 likewise: its provider bar is the sentinel that 13:30 is complete
    fake!.push([trade(4, 415.7, '2024-06-10T13:32:02Z')]);
    fake!.push([bar('2024-06-10T13:31:00Z', 12_345)]);
    const t1331 = Date.parse('2024-06-10T13:31:00Z');
    const t1330 = Date.parse('2024-06-10T13:30:00Z');
    await client.waitFor((f) => f.ch === 'bar.1m:MSFT' && f.d.closed === true && f.d.t === t1331, 15_000);
    // (the probe's 13:29 minute has no provider bar: the engine may close it after the wait, as
    // the source clock has moved on; only the two minutes with provider bars are looked at)
    const closed = client.frames.filter((f) => f.ch === 'bar.1m:MSFT' && f.op === 'data' && f.d.closed === true && f.d.t >= t1330);
    expect(closed.map((f) => [f.d.t, f.d.v, f.d.corrected ?? false])).toEqual([
      [t1330, 49_378, false],
      [t1331, 12_345, false],
    ]);
    // the open bar of each minute still came from the trades
    expect(client.frames.some((f) => f.ch === 'bar.1m:MSFT' && f.d.closed === false && f.d.t === t1330 && f.d.n === 2)).toBe(true);
  }, 60_000);
});
