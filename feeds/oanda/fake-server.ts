import { readFileSync } from 'node:fs';
import { FakeHttpStreamServer } from '../sdk/testing/fake-http-stream-server.js';

/**
 * A local stand-in for OANDA's v20 pricing stream: GET /v3/accounts/{id}/pricing/stream with a
 * bearer token (401 with an errorMessage otherwise, 400 for an unknown account), newline-delimited
 * PRICE objects for the requested instruments and a HEARTBEAT line every `heartbeatMs` (OANDA: 5 s).
 * Each stream starts with the recorded lines of fixtures/pricing-stream.jsonl.
 */
export const OANDA_FIXTURE_LINES: string[] = readFileSync(new URL('./fixtures/pricing-stream.jsonl', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.trim().length > 0);

export type OandaFakeServer = FakeHttpStreamServer<{ instruments: string[]; n: number }>;

export async function startOandaFake(opts: {
  token: string;
  accountId: string;
  pumpMs?: number;
  heartbeatMs?: number;
  replayFixtures?: boolean;
}): Promise<OandaFakeServer> {
  return FakeHttpStreamServer.start<{ instruments: string[]; n: number }>({
    initialState: () => ({ instruments: [], n: 0 }),
    check: (req, url) => {
      const m = /^\/v3\/accounts\/([^/]+)\/pricing\/stream$/.exec(url.pathname);
      if (!m) return { status: 404, body: { errorMessage: `no route ${url.pathname}` } };
      if (req.headers.authorization !== `Bearer ${opts.token}`)
        return { status: 401, body: { errorMessage: 'Insufficient authorization to perform request.' } };
      if (decodeURIComponent(m[1]!) !== opts.accountId) return { status: 400, body: { errorMessage: `Invalid value specified for 'accountID'` } };
      if (!url.searchParams.get('instruments')) return { status: 400, body: { errorMessage: "Invalid value specified for 'instruments'" } };
      return undefined;
    },
    onStream: (s) => {
      s.state.instruments = (s.url.searchParams.get('instruments') ?? '').split(',').filter(Boolean);
      if (opts.replayFixtures !== false) for (const l of OANDA_FIXTURE_LINES) s.line(l);
    },
    pumpMs: opts.pumpMs ?? 25,
    onPump: (s) => {
      const n = ++s.state.n;
      const time = new Date().toISOString();
      for (const instrument of s.state.instruments) {
        const mid = 1.1 + (n % 20) / 10_000;
        s.line({
          type: 'PRICE',
          time,
          instrument,
          status: 'tradeable',
          tradeable: true,
          bids: [{ price: (mid - 0.00005).toFixed(5), liquidity: 1_000_000 }],
          asks: [{ price: (mid + 0.00005).toFixed(5), liquidity: 1_000_000 }],
          closeoutBid: (mid - 0.0001).toFixed(5),
          closeoutAsk: (mid + 0.0001).toFixed(5),
        });
      }
    },
    heartbeatMs: opts.heartbeatMs ?? 100,
    onHeartbeat: (s) => s.line({ type: 'HEARTBEAT', time: new Date().toISOString() }),
  });
}
