import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { barsUrl, fetchBars } from '../../packages/client/src/history.js';
import { startTestEngine, streamUrl } from '../client/helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `fetchBars(base, ...)` of `@tickwire/client/history` takes the stream URL a client connects to
 * as `base` (React's useBarHistory passes `client.options.url`). A stream URL may carry a query
 * (`?token=<jwt>`, which the upgrade and the SDK's HTTP-stream fallback accept) or a fragment.
 * Before, `barsUrl` appended `/v1/bars?...` after them: `ws://host/v1/stream?token=JWT` became
 * `http://host/v1/stream?token=JWT/v1/bars?symbol=...`, a GET of the WebSocket route with the
 * token in its URL (access logs), and the history request failed; with `#frag`, the route's path
 * went into the fragment, which is never sent. Now the base's query and fragment are dropped, and
 * a `token` in its query is sent as `Authorization: Bearer` when no `token` option is given.
 */
const SECRET = 'history-client-base-secret-0123456789abcd';
const sign = (sub: string): Promise<string> =>
  new SignJWT({ sub })
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(new TextEncoder().encode(SECRET));

let engine: Engine;
let jwt: string;
beforeAll(async () => {
  engine = await startTestEngine(undefined, { auth: { mode: 'required', jwtSecret: SECRET }, synthetic: { seed: 7, rate: 2000 } });
  jwt = await sign('u1');
  await waitFor(async () => (await fetchBars(`http://127.0.0.1:${engine.port}`, { symbol: 'BTC-USD', interval: '1s' }, { token: jwt })).bars.length >= 2, {
    timeout: 20_000,
    what: 'two closed 1s bars',
  });
}, 60_000);
afterAll(() => engine?.close());

/** the global fetch, recording what each request sent */
function recording(): { fetch: typeof fetch; sent: { url: string; authorization: string | null }[] } {
  const sent: { url: string; authorization: string | null }[] = [];
  return {
    sent,
    fetch: (input, init) => {
      sent.push({ url: String(input), authorization: new Headers(init?.headers).get('authorization') });
      return fetch(input, init);
    },
  };
}

describe('fetchBars with a stream URL that carries a query or a fragment', () => {
  it('?token=<jwt> on the stream URL: GET /v1/bars answers a page, the token goes in Authorization, never in the URL', async () => {
    const r = recording();
    const page = await fetchBars(`${streamUrl(engine.port)}?token=${jwt}`, { symbol: 'BTC-USD', interval: '1s', limit: 2 }, { fetch: r.fetch });
    expect(page.bars).toHaveLength(2);
    expect(r.sent).toHaveLength(1);
    const url = new URL(r.sent[0]!.url);
    expect(url.pathname).toBe('/v1/bars');
    expect(url.search).not.toContain(jwt);
    expect(r.sent[0]!.authorization).toBe(`Bearer ${jwt}`);
  });

  it('a token option wins over the URL token, which is sent nowhere', async () => {
    const r = recording();
    const page = await fetchBars(
      `${streamUrl(engine.port)}/?encoding=json&token=not-a-jwt`,
      { symbol: 'BTC-USD', interval: '1s', limit: 1 },
      { fetch: r.fetch, token: jwt },
    );
    expect(page.bars).toHaveLength(1);
    expect(r.sent[0]!.url).not.toContain('not-a-jwt');
    expect(r.sent[0]!.authorization).toBe(`Bearer ${jwt}`);
  });

  it('a fragment on the base is dropped, not given the route', async () => {
    const page = await fetchBars(`${streamUrl(engine.port)}#chart`, { symbol: 'BTC-USD', interval: '1s', limit: 1 }, { token: jwt });
    expect(page.bars).toHaveLength(1);
  });

  it('barsUrl: the base query and fragment are not in the address; the HTTP-stream URL works as a base too', () => {
    const q = { symbol: 'AAPL', interval: '1m', to: 5 } as const;
    expect(barsUrl('wss://md.example.com/v1/stream?token=JWT&encoding=json#x', q)).toBe('https://md.example.com/v1/bars?symbol=AAPL&interval=1m&to=5');
    expect(barsUrl('https://md.example.com/prefix/v1/stream/sse?token=JWT', q)).toBe('https://md.example.com/prefix/v1/bars?symbol=AAPL&interval=1m&to=5');
    expect(barsUrl('', q)).toBe('/v1/bars?symbol=AAPL&interval=1m&to=5');
  });
});
