import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_INSTRUMENTS } from '../../src/core/instruments.js';
import { adminGet } from '../helpers/admin-api.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';

/**
 * GET /admin/api/overview, polled every second by the operator's console, and GET
 * /admin/api/channels listed every channel a client had subscribed to, with its tiers and rate:
 * their size grew with the instruments times the channel kinds (and each client picks up to
 * gateway.maxSubscriptions names). The overview now lists the ADMIN_OVERVIEW_CHANNELS (100)
 * busiest with exact totals, and /admin/api/channels pages through them all by name (`after`),
 * searches names and answers 400 to a bad parameter. Two gateway workers: a channel both serve is
 * one row, its subscribers summed.
 */
const SERVICE_TOKEN = 'svc-admin-channels-0123456789';
const KINDS = ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d', 'status', 'book'];
const CHANNELS = DEFAULT_INSTRUMENTS.flatMap((i) => KINDS.map((k) => `${k}:${i.symbol}`)).sort();
const CONNECTIONS = 12;
/** connection i subscribes to the channels from i * STEP on: channel j has min(j / STEP + 1, CONNECTIONS) subscribers */
const STEP = 7;

interface Channel {
  channel: string;
  subscribers: number;
  tiers: Record<string, number>;
}
interface Page {
  channels: Channel[];
  matched: number;
  totals: { channels: number; subscribers: number };
  next: string | null;
}

const expected = new Map<string, number>();
for (let i = 0; i < CONNECTIONS; i++) for (const c of CHANNELS.slice(i * STEP)) expected.set(c, (expected.get(c) ?? 0) + 1);
const SUBSCRIPTIONS = [...expected.values()].reduce((a, b) => a + b, 0);

describe('the admin API under many channels', () => {
  const gw = embeddedWorkers({ auth: { serviceToken: SERVICE_TOKEN }, limits: { connectionsPerIp: 0, connectionsPerIpPerSec: 0 } });
  const sockets: WebSocket[] = [];
  const base = (): string => `http://127.0.0.1:${gw.port}`;

  beforeAll(async () => {
    expect(CHANNELS.length).toBeGreaterThan(200);
    for (let i = 0; i < CONNECTIONS; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/v1/stream`, 'tickwire.v1.json');
      const acked = new Promise<void>((resolve, reject) => {
        ws.on('message', (m: Buffer) => {
          if (m.toString().startsWith('{"op":"ack"')) resolve();
        });
        ws.once('error', reject);
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.send(JSON.stringify({ op: 'subscribe', id: 1, channels: CHANNELS.slice(i * STEP), throttle: 5000, snapshot: false }));
      await acked;
      sockets.push(ws);
    }
  }, 120_000);

  afterAll(() => {
    for (const ws of sockets) ws.terminate();
  });

  const get = adminGet(base, SERVICE_TOKEN);

  it('the overview lists the 100 busiest channels, their subscribers summed over the workers, and exact totals', async () => {
    const o = await get<{ channels: Channel[]; channelTotals: Page['totals'] }>('/admin/api/overview');
    expect(o.status).toBe(200);
    console.log(`admin overview with ${CHANNELS.length} channels on 2 workers: ${o.bytes} bytes, ${o.body.channels.length} channel rows`);
    expect(o.body.channelTotals).toEqual({ channels: CHANNELS.length, subscribers: SUBSCRIPTIONS });
    expect(o.body.channels).toHaveLength(100);
    const busiest = [...expected.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 100);
    expect(o.body.channels.map((c) => [c.channel, c.subscribers])).toEqual(busiest);
    expect(o.body.channels[0]!.tiers).toEqual({ 5000: CONNECTIONS });
  });

  it('GET /admin/api/channels pages through every channel once, by name, with exact counts', async () => {
    const seen: Channel[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const query: string = `limit=64${after ? `&after=${encodeURIComponent(after)}` : ''}`;
      const p = await get<Page>(`/admin/api/channels?${query}`);
      expect(p.status).toBe(200);
      expect(p.body.channels.length).toBeLessThanOrEqual(64);
      expect(p.body.matched).toBe(CHANNELS.length);
      expect(p.body.totals).toEqual({ channels: CHANNELS.length, subscribers: SUBSCRIPTIONS });
      seen.push(...p.body.channels);
      after = p.body.next;
      pages++;
    } while (after !== null && pages < 50);
    expect(pages).toBe(Math.ceil(CHANNELS.length / 64));
    expect(seen.map((c) => c.channel)).toEqual(CHANNELS);
    expect(Object.fromEntries(seen.map((c) => [c.channel, c.subscribers]))).toEqual(Object.fromEntries(expected));
    // without limit: 100
    expect((await get<Page>('/admin/api/channels')).body.channels).toHaveLength(100);
  });

  it('searches names (case-insensitive) and orders by subscribers on request', async () => {
    const btc = CHANNELS.filter((c) => c.toLowerCase().includes('btc'));
    expect(btc.length).toBeGreaterThan(0);
    const r = await get<Page>('/admin/api/channels?search=BTC');
    expect(r.body.matched).toBe(btc.length);
    expect(r.body.channels.map((c) => c.channel)).toEqual(btc);
    expect(r.body.next).toBeNull();
    const quotes = await get<Page>('/admin/api/channels?search=quote%3A&limit=3');
    expect(quotes.body.matched).toBe(CHANNELS.filter((c) => c.includes('quote:')).length);
    expect(quotes.body.channels).toHaveLength(3);
    expect((await get<Page>('/admin/api/channels?search=nothing-like-this')).body).toMatchObject({ matched: 0, channels: [], next: null });
    const top = await get<Page>('/admin/api/channels?order=busiest&limit=5');
    expect(top.body.channels.map((c) => c.subscribers)).toEqual([CONNECTIONS, CONNECTIONS, CONNECTIONS, CONNECTIONS, CONNECTIONS]);
    expect(top.body.next).toBeNull();
  });

  it('a bad query gets 400 naming the parameter; no token gets 401', async () => {
    const cases: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=10&limit=20', 'limit'],
      ['after=', 'after'],
      [`search=${'x'.repeat(300)}`, 'search'],
      ['search=%ZZ', 'search'],
      ['order=random', 'order'],
      ['order=busiest&after=quote%3AAAPL', 'after'],
      ['offset=100', 'offset'],
    ];
    for (const [query, field] of cases) {
      const r = await get<{ error: string; field: string; message: string }>(`/admin/api/channels?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body, query).toMatchObject({ error: 'BAD_REQUEST', field });
      expect(r.body.message.length, query).toBeLessThan(200);
    }
    expect((await fetch(`${base()}/admin/api/channels?limit=5`)).status).toBe(401);
  });
});
