import { describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type WebSocketConstructor, type WebSocketLike } from '../../packages/client/src/index.js';

/**
 * Bad options are a clear error at construction, naming the option: a URL that is not one
 * (`localhost:8080/v1/stream`, a typo) used to fail every attempt with a TRANSPORT error and be
 * retried for ever, `connect()` never settling.
 */
describe('client options', () => {
  it.each(['localhost:8080/v1/stream', '127.0.0.1:8080', 'not a url', '', 'ftp://127.0.0.1/v1/stream', 'ws://'])(
    'url %j: a TypeError naming options.url',
    (url) => {
      expect(() => new TickwireClient({ url })).toThrow(TypeError);
      expect(() => new TickwireClient({ url })).toThrow(/options\.url/);
    },
  );

  it.each(['ws://127.0.0.1:8080/v1/stream', 'wss://md.example.com/v1/stream', 'WSS://MD.EXAMPLE.COM/v1/stream', 'https://md.example.com/v1/stream'])(
    'url %j is accepted',
    (url) => {
      const c = new TickwireClient({ url, trackPageVisibility: false });
      expect(c.state).toBe('idle');
    },
  );

  it('no options or no url: the same error', () => {
    expect(() => new TickwireClient(undefined as never)).toThrow(/options\.url/);
    expect(() => new TickwireClient({} as never)).toThrow(/options\.url/);
  });

  it('a `tokenIn` the option does not take (a typo in JavaScript) is an error, never the token in the URL', async () => {
    // (it was taken as unset before: the default; and before that, as `query`)
    for (const typo of ['headers', 'Header', 'subprotocol']) {
      expect(() => new TickwireClient({ url: 'ws://127.0.0.1:9/v1/stream', tokenIn: typo as 'header', trackPageVisibility: false })).toThrow(
        `options.tokenIn is "${typo}": takes "protocol" or "query" or "header"`,
      );
    }
    const made: { url: string; protocols: string[]; headers: Record<string, string> | undefined }[] = [];
    // a socket that records how it was made and never opens
    class Recording implements WebSocketLike {
      readyState = 0;
      protocol = '';
      binaryType = '';
      onopen = null;
      onmessage = null;
      onclose: WebSocketLike['onclose'] = null;
      onerror = null;
      constructor(url: string, protocols?: string | string[], init?: { headers?: Record<string, string> }) {
        made.push({ url, protocols: [protocols ?? []].flat(), headers: init?.headers });
      }
      send(): void {}
      close(code = 1000, reason = ''): void {
        this.readyState = 3;
        this.onclose?.({ code, reason });
      }
    }
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln';
    for (const tokenIn of ['protocol', 'header', 'query'] as const) {
      const c = new TickwireClient({
        url: 'ws://127.0.0.1:9/v1/stream',
        token,
        tokenIn: tokenIn as 'header',
        WebSocket: Recording as WebSocketConstructor,
        trackPageVisibility: false,
      });
      c.connect().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 20));
      await c.close();
    }
    // the same with the socket a browser has (the global WebSocket): unset is the subprotocol
    const g = globalThis as { WebSocket?: unknown };
    const saved = g.WebSocket;
    g.WebSocket = Recording;
    try {
      for (const tokenIn of ['protocol', undefined] as const) {
        const c = new TickwireClient({ url: 'ws://127.0.0.1:9/v1/stream', token, tokenIn: tokenIn as 'header' | undefined, trackPageVisibility: false });
        c.connect().catch(() => undefined);
        await new Promise((r) => setTimeout(r, 20));
        await c.close();
      }
    } finally {
      g.WebSocket = saved;
    }
    const where = made.map((m) =>
      m.url.includes(token)
        ? 'url'
        : m.headers?.Authorization === `Bearer ${token}`
          ? 'header'
          : m.protocols.includes(`tickwire.bearer.${token}`)
            ? 'protocol'
            : 'none',
    );
    // unset: a header with the socket given, the subprotocol with the global one
    expect(where).toEqual(['protocol', 'header', 'url', 'protocol', 'protocol']);
  });
});
