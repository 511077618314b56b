import { describe, expect, it } from 'vitest';
import { TestClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';

/**
 * Bar history on the embedded engine with gateway workers (the default on a host with several
 * cores): the feeds and the bar store live on the main thread, so every worker must read that
 * store. A worker with a store of its own (empty: no feed writes it) answered no history at all.
 */
interface Bar {
  t: number;
  closed?: boolean;
}

describe('bar history through gateway workers (embedded, 2 workers)', () => {
  const gw = embeddedWorkers({ auth: { mode: 'off' }, synthetic: { rate: 2000, seed: 5 } });

  it('serves the closed bars of the main thread on every worker, over HTTP and on subscribe', async () => {
    const url = `http://127.0.0.1:${gw.port}/v1/bars?symbol=BTC-USD&interval=1s`;
    // the kernel spreads connections over the workers: ask often enough that both answer
    await waitFor(
      async () => {
        const res = await fetch(url);
        return ((await res.json()) as { bars: Bar[] }).bars.length >= 2;
      },
      { timeout: 20_000, what: 'two closed 1 s bars over HTTP' },
    );
    const workersSeen = new Set<number>();
    for (let i = 0; i < 24; i++) {
      const res = await fetch(url, { headers: { connection: 'close' } });
      const body = (await res.json()) as { bars: Bar[] };
      expect(body.bars.length, `GET /v1/bars answer ${i}`).toBeGreaterThanOrEqual(2);
      expect(body.bars.every((b) => b.closed === true)).toBe(true);
    }
    // several connections, so that both workers serve some; each gets its history
    const clients: TestClient[] = [];
    try {
      for (let i = 0; i < 12; i++) {
        const c = await TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`, { encoding: 'json' });
        clients.push(c);
        const ack = await c.request({ op: 'subscribe', id: 1, channels: ['bar.1s:BTC-USD'], history: 2 });
        expect(ack.subscribed).toEqual(['bar.1s:BTC-USD']);
        const snap = await c.waitFor((f) => f.op === 'data' && f.ch === 'bar.1s:BTC-USD' && f.snapshot === true, 10_000);
        expect(snap.history as Bar[], `client ${i}'s history`).toHaveLength(2);
      }
      const stats = (await (await fetch(`http://127.0.0.1:${gw.port}/v1/stats`)).json()) as { workers: { worker: number; connections: number }[] };
      for (const w of stats.workers) if (w.connections > 0) workersSeen.add(w.worker);
      expect(workersSeen.size, 'connections on both workers').toBe(2);
    } finally {
      for (const c of clients) c.close();
    }
  });
});
