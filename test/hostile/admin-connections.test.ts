import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SECRET, token } from '../auth/helpers.js';
import { adminGet } from '../helpers/admin-api.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';

/**
 * GET /admin/api/overview, polled every second by the operator's console, listed every connection
 * of the gateway (about 520 bytes each), copied from each gateway worker and serialised at each
 * poll: its size was whoever opens connections to choose (1.3 MB a poll at 2,560 connections).
 * It now lists ADMIN_OVERVIEW_CONNECTIONS (100), slow first, then most buffered, then newest, with
 * exact totals; GET /admin/api/connections pages through them all (oldest first, `after`) and
 * finds a user's or an address's connections among thousands. Two gateway workers: the rows and
 * totals of both.
 */
const SERVICE_TOKEN = 'svc-admin-connections-0123456789';
const ANONYMOUS = 280;
const ALICE = 7;

interface Row {
  id: string;
  user: string | null;
  ip: string;
  openedAt: number;
  slow: boolean;
  bufferedBytes: number;
}
interface Totals {
  connections: number;
  slow: number;
  bufferedBytes: number;
}

describe('the admin API under many connections', () => {
  const gw = embeddedWorkers({
    auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
    limits: { connectionsPerIp: 0, connectionsPerIpPerSec: 0, connectionsPerUser: 0 },
  });
  const sockets: WebSocket[] = [];
  const base = (): string => `http://127.0.0.1:${gw.port}`;

  const open = async (headers: Record<string, string> = {}): Promise<void> => {
    const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/v1/stream`, 'tickwire.v1.json', { headers });
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve()); // the welcome: the connection is registered
      ws.once('error', reject);
    });
    sockets.push(ws);
  };

  beforeAll(async () => {
    const alice = { authorization: `Bearer ${await token({ sub: 'alice' })}` };
    for (let i = 0; i < ANONYMOUS; i++) {
      await open();
      // alice's connections among the others, so that they fall on different pages and workers
      if (i % 40 === 0) await open(alice);
    }
    expect(sockets).toHaveLength(ANONYMOUS + ALICE);
  }, 120_000);

  afterAll(() => {
    for (const ws of sockets) ws.terminate();
  });

  const get = adminGet(base, SERVICE_TOKEN);

  it('the overview lists at most 100 connections, newest first when none is slow, and exact totals', async () => {
    const o = await get<{ connections: Row[]; connectionTotals: Totals }>('/admin/api/overview');
    expect(o.status).toBe(200);
    console.log(`admin overview with ${ANONYMOUS + ALICE} connections on 2 workers: ${o.bytes} bytes, ${o.body.connections.length} rows`);
    expect(o.body.connectionTotals).toEqual({ connections: ANONYMOUS + ALICE, slow: 0, bufferedBytes: expect.any(Number) });
    expect(o.body.connections).toHaveLength(100);
    const opened = o.body.connections.map((c) => c.openedAt);
    expect(opened).toEqual([...opened].sort((a, b) => b - a));
    // about 150 bytes a row here (no channels): what the console pulls each second, whatever the count
    expect(o.bytes).toBeLessThan(100 * 600 + 4096);
  });

  it('GET /admin/api/connections pages through every connection once, oldest first', async () => {
    const seen: Row[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const query: string = `limit=64${after ? `&after=${after}` : ''}`;
      const p = await get<{ connections: Row[]; matched: number; totals: Totals; next: string | null }>(`/admin/api/connections?${query}`);
      expect(p.status).toBe(200);
      expect(p.body.connections.length).toBeLessThanOrEqual(64);
      expect(p.body.matched).toBe(ANONYMOUS + ALICE);
      expect(p.body.totals.connections).toBe(ANONYMOUS + ALICE);
      seen.push(...p.body.connections);
      after = p.body.next;
      pages++;
    } while (after !== null && pages < 20);
    expect(pages).toBe(Math.ceil((ANONYMOUS + ALICE) / 64));
    expect(new Set(seen.map((c) => c.id)).size).toBe(ANONYMOUS + ALICE);
    const keys = seen.map((c) => [c.openedAt, c.id] as const);
    const sorted = [...keys].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
    expect(keys).toEqual(sorted);
    // without limit: 100
    expect((await get<{ connections: Row[] }>('/admin/api/connections')).body.connections).toHaveLength(100);
  });

  it('finds a user’s connections, and an address’s, among the others', async () => {
    const alice = await get<{ connections: Row[]; matched: number; next: string | null }>('/admin/api/connections?user=alice');
    expect(alice.status).toBe(200);
    expect(alice.body.matched).toBe(ALICE);
    expect(alice.body.connections).toHaveLength(ALICE);
    expect(alice.body.connections.every((c) => c.user === 'alice')).toBe(true);
    expect(alice.body.next).toBeNull();
    // a user id that only looks like alice's is not hers
    for (const other of ['Alice', 'alice%20', '%61lice%00', 'ali']) {
      const r = await get<{ matched: number }>(`/admin/api/connections?user=${other}`);
      expect(r.status, other).toBe(200);
      expect(r.body.matched, other).toBe(0);
    }
    const byIp = await get<{ matched: number; connections: Row[] }>('/admin/api/connections?ip=127.0.0.1&limit=5');
    expect(byIp.body.matched).toBe(ANONYMOUS + ALICE);
    expect(byIp.body.connections).toHaveLength(5);
    expect((await get<{ matched: number }>('/admin/api/connections?ip=10.0.0.1')).body.matched).toBe(0);
    const both = await get<{ matched: number }>('/admin/api/connections?ip=127.0.0.1&user=alice');
    expect(both.body.matched).toBe(ALICE);
  });

  it('a bad query gets 400 naming the parameter; no token gets 401', async () => {
    const cases: [string, string][] = [
      ['limit=0', 'limit'],
      ['limit=501', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=-1', 'limit'],
      ['limit=1e3', 'limit'],
      ['limit=10&limit=20', 'limit'],
      ['after=yesterday', 'after'],
      ['after=1.abc/def', 'after'],
      ['user=', 'user'],
      [`user=${'x'.repeat(300)}`, 'user'],
      ['user=%ZZ', 'user'],
      ['offset=100', 'offset'],
      ['limit[]=5', 'limit[]'],
    ];
    for (const [query, field] of cases) {
      const r = await get<{ error: string; field: string; message: string }>(`/admin/api/connections?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body, query).toMatchObject({ error: 'BAD_REQUEST', field });
      expect(r.body.message.length, query).toBeLessThan(200);
    }
    expect((await fetch(`${base()}/admin/api/connections?limit=5`)).status).toBe(401);
  });
});
