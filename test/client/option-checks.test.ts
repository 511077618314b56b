import { describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { Backoff, TickwireClient, type ClientOptions } from '../../packages/client/src/index.js';

/**
 * Bad options are a clear error at construction (docs/client-sdk.md#bad-input): a TypeError (a
 * RangeError for a number out of range) that names the option, shows the value given (cut to 40
 * characters) and says what the option takes. Before, `encoding: 'jsno'` meant MessagePack,
 * `fallback: 'off'` meant on, `trackPageVisibility: 'no'` meant yes, `heartbeatTimeoutMs: '5000'`
 * and `connectTimeoutMs: 1e10` (past the largest timer delay: it fires at once) were taken as
 * they came, and a `tokenIn` typo was taken as unset.
 */

const url = 'ws://127.0.0.1:9/v1/stream';
const client = (o: Record<string, unknown> = {}): TickwireClient => new TickwireClient({ url, trackPageVisibility: false, ...o } as ClientOptions);

/** The error `f` throws, or the one its promise rejects with. */
async function thrown(f: () => unknown): Promise<Error> {
  try {
    await f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('nothing was thrown');
}

const MAX_MS = 2 ** 31 - 1;

// [option, bad value, error class, the value as the message shows it]
const badOptions: [string, unknown, ErrorConstructor, string][] = [
  ['encoding', 'jsno', TypeError, '"jsno"'],
  ['encoding', 'JSON', TypeError, '"JSON"'],
  ['encoding', 1, TypeError, '1'],
  ['encoding', 'x'.repeat(500), TypeError, `"${'x'.repeat(40)}"`],
  ['tokenIn', 'headers', TypeError, '"headers"'],
  ['token', 42, TypeError, '42'],
  ['token', {}, TypeError, '[object Object]'],
  ['getToken', 'eyJ.x.y', TypeError, '"eyJ.x.y"'],
  ['WebSocket', {}, TypeError, '[object Object]'],
  ['trackPageVisibility', 'no', TypeError, '"no"'],
  ['reconnect', 'yes', TypeError, '"yes"'],
  ['reconnect', 0, TypeError, '0'],
  ['fallback', 'off', TypeError, '"off"'],
  ['heartbeatIntervalMs', '15000', TypeError, '"15000"'],
  ['heartbeatIntervalMs', -1, RangeError, '-1'],
  ['heartbeatIntervalMs', NaN, RangeError, 'NaN'],
  ['heartbeatIntervalMs', Infinity, RangeError, 'Infinity'],
  ['heartbeatTimeoutMs', 0, RangeError, '0'],
  ['requestTimeoutMs', MAX_MS + 1, RangeError, String(MAX_MS + 1)],
  ['requestTimeoutMs', -5, RangeError, '-5'],
  ['connectTimeoutMs', 0, RangeError, '0'],
  ['connectTimeoutMs', 1e10, RangeError, '10000000000'],
  ['refreshBeforeExpiryMs', -1, RangeError, '-1'],
  ['refreshBeforeExpiryMs', true, TypeError, 'true'],
];

describe('client option checks', () => {
  it.each(badOptions)('options.%s = %j: a clear error at construction', async (option, value, type, shown) => {
    const err = await thrown(() => client({ [option]: value }));
    expect(err).toBeInstanceOf(type);
    expect(err.message).toContain(`options.${option} is ${shown}: takes `);
    expect(err.message.length).toBeLessThan(120);
  });

  it.each([
    ['initialDelayMs', -1, RangeError],
    ['initialDelayMs', '250', TypeError],
    ['maxDelayMs', MAX_MS + 1, RangeError],
    ['maxDelayMs', 100, RangeError], // below the default initialDelayMs (250)
    ['factor', 0.5, RangeError],
    ['factor', NaN, RangeError],
    ['maxRetries', -1, RangeError],
    ['maxRetries', '3', TypeError],
  ] as const)('options.reconnect.%s = %j: a clear error', async (option, value, type) => {
    const err = await thrown(() => client({ reconnect: { [option]: value } }));
    expect(err).toBeInstanceOf(type);
    expect(err.message).toContain(`reconnect.${option} is ${typeof value === 'string' ? JSON.stringify(value) : String(value)}: takes `);
  });

  it('Backoff itself names the option and the bound', () => {
    expect(() => new Backoff({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(/maxDelayMs is 100: takes a number from 500 to 2147483647/);
    expect(() => new Backoff({ factor: 0 })).toThrow(/factor is 0: takes a number from 1 to Infinity/);
  });

  it.each([
    ['retryWebSocketMs', -1, RangeError],
    ['retryWebSocketMs', MAX_MS + 1, RangeError],
    ['outageAttempts', 0, RangeError],
    ['outageAttempts', '6', TypeError],
    ['outageProbeMs', -1, RangeError],
  ] as const)('options.fallback.%s = %j: a clear error', async (option, value, type) => {
    const err = await thrown(() => client({ fallback: { [option]: value } }));
    expect(err).toBeInstanceOf(type);
    expect(err.message).toContain(`options.fallback.${option} is `);
  });

  it('the message says what is taken', async () => {
    expect((await thrown(() => client({ encoding: 'jsno' }))).message).toBe('options.encoding is "jsno": takes "msgpack" or "json"');
    expect((await thrown(() => client({ tokenIn: 'headers' }))).message).toBe('options.tokenIn is "headers": takes "protocol" or "query" or "header"');
    expect((await thrown(() => client({ fallback: 'off' }))).message).toBe('options.fallback is "off": takes true or false or an object');
    expect((await thrown(() => client({ connectTimeoutMs: 0 }))).message).toBe('options.connectTimeoutMs is 0: takes a number from 1 to 2147483647');
  });

  it('good values, and unset ones (undefined or null: the default), are taken as before', () => {
    for (const o of [
      {},
      { encoding: 'json', tokenIn: 'query', token: 't', authCheckUrl: false, reconnect: false, fallback: false, trackPageVisibility: true },
      { encoding: 'msgpack', tokenIn: 'protocol', token: () => 't', getToken: async () => 't', authCheckUrl: 'http://127.0.0.1:9/v1/auth/check' },
      { tokenIn: 'header', reconnect: true, fallback: true, WebSocket: class {} },
      { reconnect: { initialDelayMs: 0, maxDelayMs: 0, factor: 1, maxRetries: 0 } },
      { reconnect: { maxRetries: Infinity, factor: 10, maxDelayMs: MAX_MS } },
      { fallback: { url: 'http://127.0.0.1:9/sse', retryWebSocketMs: 0, outageAttempts: 1, outageProbeMs: 0 } },
      { fallback: { outageAttempts: Infinity, retryWebSocketMs: MAX_MS } },
      { heartbeatIntervalMs: 0, heartbeatTimeoutMs: 1, requestTimeoutMs: 0, connectTimeoutMs: 1, refreshBeforeExpiryMs: 0 },
      { heartbeatIntervalMs: MAX_MS, heartbeatTimeoutMs: MAX_MS, requestTimeoutMs: MAX_MS, connectTimeoutMs: MAX_MS, refreshBeforeExpiryMs: MAX_MS },
      { encoding: undefined, tokenIn: undefined, token: undefined, reconnect: undefined, fallback: undefined, heartbeatIntervalMs: undefined },
      { encoding: null, tokenIn: null, token: null, getToken: null, reconnect: null, fallback: null, heartbeatIntervalMs: null, trackPageVisibility: null },
    ]) {
      const c = client(o);
      expect(c.state).toBe('idle');
      expect(c.codec.encoding).toBe(o.encoding === 'json' ? 'json' : 'msgpack');
    }
  });

  it('a null token is no token (as every option unset is)', async () => {
    const c = client({ token: null, getToken: null, reconnect: false, fallback: false, authCheckUrl: false, connectTimeoutMs: 200 });
    // no TOKEN error ("src is not a function"): the attempt goes out, without a token, and fails to connect
    const errors: string[] = [];
    c.on('error', (e) => errors.push(e.code));
    await expect(c.connect()).rejects.toBeDefined();
    expect(errors).not.toContain('TOKEN');
    await c.close();
  });
});

describe('method argument checks', () => {
  it('setVisible and setPageVisible take true or false', async () => {
    const c = client();
    expect(await thrown(() => c.setVisible(['quote:AAPL'], 'false' as never))).toBeInstanceOf(TypeError);
    expect((await thrown(() => c.setVisible(['quote:AAPL'], 0 as never))).message).toBe('setVisible: visible is 0: takes true or false');
    expect((await thrown(() => c.setPageVisible('hidden' as never))).message).toBe('setPageVisible: visible is "hidden": takes true or false');
    expect((await thrown(() => (c.setPageVisible as () => Promise<void>)())).message).toBe('setPageVisible: visible is "undefined": takes true or false');
    // ('hidden' was taken as shown: a string is truthy)
    expect(c.pageVisible).toBe(true);
    await c.setPageVisible(false);
    expect(c.pageVisible).toBe(false);
  });

  it("subscribe's `visible` takes true or false (anything else was taken as on screen), thrown at once, nothing kept", () => {
    const c = client();
    expect(() => c.subscribe(['quote:AAPL'], { visible: 'false' as never })).toThrow('subscribe: options.visible is "false": takes true or false');
    expect(() => c.subscribe(['quote:AAPL'], { visible: 0 as never })).toThrow(TypeError);
    expect(c.subscriptions).toEqual([]);
    c.subscribe(['quote:AAPL'], { visible: false }).catch(() => undefined);
    c.subscribe(['quote:MSFT'], { visible: undefined }).catch(() => undefined);
    expect(c.subscriptions).toEqual(['quote:AAPL', 'quote:MSFT']);
  });

  it('refreshAuth takes a string token (a number was taken as the token)', async () => {
    const err = await thrown(() => client().refreshAuth(42 as never));
    expect(err).toBeInstanceOf(TypeError);
    expect(err.message).toBe('refreshAuth: token is 42: takes a string');
  });

  it('channels that are not a non-empty list of non-empty strings: the same message form', () => {
    expect(() => client().subscribe('quote:AAPL' as never)).toThrow('channels is "quote:AAPL": takes a non-empty array of non-empty strings');
    expect(() => client().unsubscribe([])).toThrow(TypeError);
  });
});
