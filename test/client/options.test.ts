import { describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient } from '../../packages/client/src/index.js';

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
});
