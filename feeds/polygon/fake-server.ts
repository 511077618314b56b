import { readFileSync } from 'node:fs';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';

/**
 * A local stand-in for the Polygon/Massive stocks WebSocket: status greeting, {"action":"auth"}
 * with the API key (auth_success / auth_failed), subscribe/unsubscribe with "T.SYM,Q.SYM,AM.SYM"
 * params, and arrays of T/Q/AM events. After the first subscription it sends the recorded
 * frames of fixtures/frames.json, then generated events.
 */
export const POLYGON_FIXTURES: Record<string, any>[][] = JSON.parse(readFileSync(new URL('./fixtures/frames.json', import.meta.url), 'utf8'));

interface PolygonConnState {
  authed: boolean;
  subs: Set<string>;
  fixturesSent: boolean;
  n: number;
}

export type PolygonFakeServer = FakeWsServer<PolygonConnState>;

export async function startPolygonFake(opts: {
  apiKey: string;
  pumpMs?: number;
  replayFixtures?: boolean;
  /** called with each subscribe/unsubscribe request before it is answered (tests: act while the answer is pending) */
  beforeAnswer?: (req: { action: string; params: string }) => void;
}): Promise<PolygonFakeServer> {
  return FakeWsServer.start<PolygonConnState>({
    initialState: () => ({ authed: false, subs: new Set(), fixturesSent: false, n: 0 }),
    onConnection: (conn) => conn.send([{ ev: 'status', status: 'connected', message: 'Connected Successfully' }]),
    onMessage: (conn, data) => {
      const req = JSON.parse(data.toString('utf8')) as { action: string; params: string };
      if (req.action === 'auth') {
        if (req.params === opts.apiKey) {
          conn.state.authed = true;
          conn.send([{ ev: 'status', status: 'auth_success', message: 'authenticated' }]);
        } else {
          conn.send([{ ev: 'status', status: 'auth_failed', message: 'authentication failed' }]);
          conn.ws.close(1008, 'authentication failed');
        }
        return;
      }
      if (!conn.state.authed) {
        conn.send([{ ev: 'status', status: 'error', message: 'not authorized' }]);
        return;
      }
      opts.beforeAnswer?.(req);
      const params = req.params.split(',').filter(Boolean);
      for (const p of params) {
        if (req.action === 'subscribe') conn.state.subs.add(p);
        else if (req.action === 'unsubscribe') conn.state.subs.delete(p);
      }
      conn.send(params.map((p) => ({ ev: 'status', status: 'success', message: `${req.action === 'subscribe' ? 'subscribed to' : 'unsubscribed to'}: ${p}` })));
      if (req.action === 'subscribe' && !conn.state.fixturesSent && opts.replayFixtures !== false) {
        conn.state.fixturesSent = true;
        for (const f of POLYGON_FIXTURES) conn.send(f);
      }
    },
    pumpMs: opts.pumpMs ?? 25,
    onPump: (conn) => {
      const n = ++conn.state.n;
      const t = Date.now();
      const px = 100 + (n % 30) / 10;
      const frame: Record<string, unknown>[] = [];
      for (const sub of conn.state.subs) {
        const [ch, sym] = [sub.slice(0, sub.indexOf('.')), sub.slice(sub.indexOf('.') + 1)];
        if (ch === 'T') frame.push({ ev: 'T', sym, x: 4, i: String(1e9 + n), z: 3, p: px, s: 10, c: [], t, q: n });
        else if (ch === 'Q') frame.push({ ev: 'Q', sym, bx: 11, bp: px - 0.01, bs: 2, ax: 12, ap: px + 0.01, as: 3, t, q: n, z: 3 });
        else if (ch === 'AM' && n % 5 === 0) {
          const s = Math.floor(t / 60_000) * 60_000 - 60_000;
          frame.push({ ev: 'AM', sym, v: 1000, o: px, c: px, h: px + 0.5, l: px - 0.5, s, e: s + 60_000 });
        }
      }
      if (frame.length) conn.send(frame);
    },
  });
}
