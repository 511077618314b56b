import { readFileSync } from 'node:fs';
import { encode as msgpackEncode } from '@msgpack/msgpack';
import { unpack } from 'msgpackr';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';
import { isoToNs } from '../sdk/time.js';
import { NS_TIMESTAMP_CODEC, NsTimestamp } from './msgpack-time.js';

/**
 * A local stand-in for Alpaca's market data v2 stream: greeting, {"action":"auth"} checked against
 * the configured key and secret (402 "auth failed" otherwise), subscribe/unsubscribe answered with
 * the current subscription, error codes (401 before auth, 406 past the connection limit, or any
 * code injected with `failSubscribeWith`), and trades/quotes/bars in JSON or, when the client asks
 * with `Content-Type: application/msgpack`, MessagePack (times as MessagePack timestamps).
 * After the first subscription it sends the recorded frames of fixtures/frames.json. `push`
 * sends any frame (corrections "c", cancels "x", statuses "s", LULDs "l", ...) to every
 * authenticated connection, as the provider would.
 */
export const ALPACA_FIXTURES: Record<string, any>[][] = JSON.parse(readFileSync(new URL('./fixtures/frames.json', import.meta.url), 'utf8'));

interface AlpacaConnState {
  msgpack: boolean;
  authed: boolean;
  subs: { trades: Set<string>; quotes: Set<string>; bars: Set<string>; updatedBars: Set<string>; statuses: Set<string>; lulds: Set<string> };
  fixturesSent: boolean;
  n: number;
  /** start of the last minute a bar was sent for: Alpaca sends each minute bar once */
  lastBarMinute: number;
}

export interface AlpacaFakeOptions {
  key: string;
  secret: string;
  pumpMs?: number;
  /** refuse connections beyond this many at once with 406 (Alpaca: usually 1) */
  connectionLimit?: number;
  /** answer subscribe requests with this error instead */
  failSubscribeWith?: { code: number; msg: string };
  replayFixtures?: boolean;
  /** called with each subscribe/unsubscribe request before it is answered (tests: act while the answer is pending) */
  beforeAnswer?: (req: Record<string, any>) => void;
}

export type AlpacaFakeServer = FakeWsServer<AlpacaConnState> & {
  /** decoded client requests (JSON or MessagePack), in order */
  requests(): Record<string, any>[];
  failSubscribeWith: AlpacaFakeOptions['failSubscribeWith'];
  /** send one frame (an array of messages) to every authenticated connection */
  push(frame: Record<string, any>[]): void;
};

/** msgpack mode: times become MessagePack timestamps carrying the string's full nanoseconds */
const withTimestamps = (msgs: Record<string, any>[]): Record<string, any>[] =>
  msgs.map((m) => (typeof m.t === 'string' ? { ...m, t: new NsTimestamp(isoToNs(m.t)) } : m));

export async function startAlpacaFake(opts: AlpacaFakeOptions): Promise<AlpacaFakeServer> {
  const requests: Record<string, any>[] = [];
  const control = { failSubscribeWith: opts.failSubscribeWith };
  const server: FakeWsServer<AlpacaConnState> = await FakeWsServer.start<AlpacaConnState>({
    initialState: () => ({
      msgpack: false,
      authed: false,
      subs: { trades: new Set(), quotes: new Set(), bars: new Set(), updatedBars: new Set(), statuses: new Set(), lulds: new Set() },
      fixturesSent: false,
      n: 0,
      lastBarMinute: 0,
    }),
    encode: (conn, value) =>
      conn.state.msgpack
        ? Buffer.from(msgpackEncode(withTimestamps(value as Record<string, any>[]), { extensionCodec: NS_TIMESTAMP_CODEC }))
        : JSON.stringify(value),
    onConnection: (conn) => {
      conn.state.msgpack = /application\/msgpack/i.test(String(conn.headers['content-type'] ?? ''));
      if (opts.connectionLimit !== undefined && server.openConnections > opts.connectionLimit) {
        conn.send([{ T: 'error', code: 406, msg: 'connection limit exceeded' }]);
        conn.ws.close(1008, 'connection limit exceeded');
        return;
      }
      conn.send([{ T: 'success', msg: 'connected' }]);
    },
    onMessage: (conn, data, isBinary) => {
      const req = (isBinary ? unpack(data) : JSON.parse(data.toString('utf8'))) as Record<string, any>;
      requests.push(req);
      if (req.action === 'auth') {
        if (conn.state.authed) conn.send([{ T: 'error', code: 403, msg: 'already authenticated' }]);
        else if (req.key === opts.key && req.secret === opts.secret) {
          conn.state.authed = true;
          conn.send([{ T: 'success', msg: 'authenticated' }]);
        } else {
          conn.send([{ T: 'error', code: 402, msg: 'auth failed' }]);
          conn.ws.close(1008, 'auth failed');
        }
        return;
      }
      if (req.action !== 'subscribe' && req.action !== 'unsubscribe') {
        conn.send([{ T: 'error', code: 400, msg: 'invalid syntax' }]);
        return;
      }
      if (!conn.state.authed) {
        conn.send([{ T: 'error', code: 401, msg: 'not authenticated' }]);
        return;
      }
      if (control.failSubscribeWith) {
        conn.send([{ T: 'error', ...control.failSubscribeWith }]);
        return;
      }
      opts.beforeAnswer?.(req);
      for (const ch of ['trades', 'quotes', 'bars', 'updatedBars', 'statuses', 'lulds'] as const) {
        for (const s of (req[ch] as string[] | undefined) ?? []) {
          if (req.action === 'subscribe') conn.state.subs[ch].add(s);
          else conn.state.subs[ch].delete(s);
        }
      }
      const { trades, quotes, bars, updatedBars, statuses, lulds } = conn.state.subs;
      // corrections and cancel errors follow the trade subscription (they are not subscribed to on their own)
      conn.send([
        {
          T: 'subscription',
          trades: [...trades],
          quotes: [...quotes],
          bars: [...bars],
          updatedBars: [...updatedBars],
          dailyBars: [],
          statuses: [...statuses],
          lulds: [...lulds],
          corrections: [...trades],
          cancelErrors: [...trades],
        },
      ]);
      if (!conn.state.fixturesSent && opts.replayFixtures !== false) {
        conn.state.fixturesSent = true;
        for (const frame of ALPACA_FIXTURES) conn.send(frame);
      }
    },
    pumpMs: opts.pumpMs ?? 25,
    onPump: (conn) => {
      if (!conn.state.authed) return;
      const n = ++conn.state.n;
      const t = new Date().toISOString();
      const px = 100 + (n % 30) / 10;
      const frame: Record<string, any>[] = [];
      for (const S of conn.state.subs.trades) frame.push({ T: 't', S, i: n, x: 'V', p: px, s: 10, t, c: ['@'], z: 'C' });
      for (const S of conn.state.subs.quotes) frame.push({ T: 'q', S, bx: 'V', bp: px - 0.01, bs: 2, ax: 'V', ap: px + 0.01, as: 3, t, c: ['R'], z: 'C' });
      const minuteMs = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
      if (minuteMs > conn.state.lastBarMinute) {
        conn.state.lastBarMinute = minuteMs;
        const minute = new Date(minuteMs).toISOString();
        for (const S of conn.state.subs.bars) frame.push({ T: 'b', S, o: px, h: px + 0.5, l: px - 0.5, c: px, v: 1000, t: minute, n: 12, vw: px });
      }
      if (frame.length) conn.send(frame);
    },
  });
  return Object.assign(server, {
    requests: () => requests,
    push: (frame: Record<string, any>[]) => {
      for (const conn of server.conns) if (conn.state.authed) conn.send(frame);
    },
    get failSubscribeWith() {
      return control.failSubscribeWith;
    },
    set failSubscribeWith(v: AlpacaFakeOptions['failSubscribeWith']) {
      control.failSubscribeWith = v;
    },
  }) as AlpacaFakeServer;
}
