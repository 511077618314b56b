import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TOKEN_SUBPROTOCOL_PREFIX } from '../../src/protocol/index.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { TestClient } from '../helpers/ws-client.js';
import { SECRET, testEngine, token, wsUrl } from './helpers.js';

/** Connect; the HTTP status of a refused upgrade, or the open client. */
async function attempt(url: string, opts: Parameters<typeof TestClient.connect>[1]): Promise<TestClient | number> {
  try {
    return await TestClient.connect(url, opts);
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? -1;
  }
}

describe('the token as a subprotocol (browsers: no token in the URL)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET } });
  });
  afterAll(() => engine.close());

  it('accepts tickwire.bearer.<jwt> beside the encoding, and selects only the encoding', async () => {
    const jwt = await token({ sub: 'alice' });
    const c = await attempt(wsUrl(engine), { encoding: 'json', protocols: ['tickwire.v1.json', `${TOKEN_SUBPROTOCOL_PREFIX}${jwt}`] });
    expect(c).toBeInstanceOf(TestClient);
    const client = c as TestClient;
    expect((await client.waitFor((f) => f.op === 'welcome')).protocol).toBe(1);
    // the answer never echoes the token
    expect(client.ws.protocol).toBe('tickwire.v1.json');
    // the connection is alice's: her private channel is hers to subscribe
    client.send({ op: 'subscribe', id: 1, channels: ['portfolio'] });
    const ack = await client.waitFor((f) => f.op === 'ack' && f.id === 1);
    expect(ack.rejected).toEqual([]);
    client.close();
  });

  it('verifies it like any token: a bad one is refused 401', async () => {
    const bad = await token({ sub: 'alice', secret: 'not-the-secret-but-long-enough-0123456789' });
    expect(await attempt(wsUrl(engine), { encoding: 'json', protocols: ['tickwire.v1.json', `${TOKEN_SUBPROTOCOL_PREFIX}${bad}`] })).toBe(401);
    expect(await attempt(wsUrl(engine), { encoding: 'json', protocols: ['tickwire.v1.json', TOKEN_SUBPROTOCOL_PREFIX] })).toBe(401);
  });

  it('with the token entry alone, the encoding is the default (msgpack)', async () => {
    // (the ws package fails an answer without a subprotocol when it offered some; browsers do not)
    const up = await rawUpgrade(engine.port, { 'sec-websocket-protocol': `${TOKEN_SUBPROTOCOL_PREFIX}${await token()}` });
    expect(up.status).toBe(101);
    expect(up.headers['sec-websocket-protocol']).toBeUndefined();
  });

  it('the Authorization header wins over it, and it wins over ?token=', async () => {
    const good = await token();
    const bad = await token({ secret: 'not-the-secret-but-long-enough-0123456789' });
    const a = await attempt(wsUrl(engine), {
      encoding: 'json',
      headers: { authorization: `Bearer ${good}` },
      protocols: ['tickwire.v1.json', `${TOKEN_SUBPROTOCOL_PREFIX}${bad}`],
    });
    expect(a).toBeInstanceOf(TestClient);
    (a as TestClient).close();
    expect(await attempt(wsUrl(engine, `?token=${good}`), { encoding: 'json', protocols: ['tickwire.v1.json', `${TOKEN_SUBPROTOCOL_PREFIX}${bad}`] })).toBe(
      401,
    );
  });

  it('an offer of the token and unknown encodings is refused 400 without echoing the token', async () => {
    const jwt = await token();
    const { status, text } = await rawUpgrade(engine.port, { 'sec-websocket-protocol': `chat, ${TOKEN_SUBPROTOCOL_PREFIX}${jwt}` });
    expect(status).toBe(400);
    expect(JSON.parse(text).error).toBe('BAD_SUBPROTOCOL');
    expect(text).not.toContain(jwt.slice(0, 20));
  });
});
