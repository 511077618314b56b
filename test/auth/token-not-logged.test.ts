import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { TOKEN_SUBPROTOCOL_PREFIX } from '../../src/protocol/index.js';
import { TestClient } from '../helpers/ws-client.js';
import { SECRET, token } from './helpers.js';

/**
 * docs/auth.md#where-the-token-goes: the gateway's own logs name the user, never the token,
 * wherever the token travelled (query, subprotocol, header) and whatever became of the request.
 */
describe('tokens never reach the gateway log', () => {
  let engine: Engine;
  let logged = '';
  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logged += chunk.toString();
        done();
      },
    });
    engine = await startEngine(
      { host: '127.0.0.1', port: 0, auth: { mode: 'required', jwtSecret: SECRET } },
      { roles: { feeds: [] }, env: {}, log: pino({ level: 'debug' }, sink) },
    );
  });
  afterAll(() => engine.close());

  it('after good and refused tokens by query, subprotocol and header, on every route that takes one', async () => {
    const good = await token({ sub: 'alice' });
    const bad = await token({ sub: 'mallory', secret: 'not-the-secret-but-long-enough-0123456789' });
    const secrets = [good, bad].map((t) => t.split('.')[2]!);
    const ws = `ws://127.0.0.1:${engine.port}/v1/stream`;
    const http = `http://127.0.0.1:${engine.port}`;
    for (const t of [good, bad]) {
      for (const opts of [
        { url: `${ws}?token=${t}`, protocols: ['tickwire.v1.json'] },
        { url: ws, protocols: ['tickwire.v1.json', `${TOKEN_SUBPROTOCOL_PREFIX}${t}`] },
        { url: ws, protocols: ['tickwire.v1.json'], headers: { authorization: `Bearer ${t}` } },
      ]) {
        const c = await TestClient.connect(opts.url, { encoding: 'json', protocols: opts.protocols, headers: opts.headers ?? {} }).catch(() => undefined);
        if (c) {
          await c.waitFor((f) => f.op === 'welcome');
          c.close();
          await c.waitClose(5000);
        }
      }
      await (await fetch(`${http}/v1/auth/check?token=${t}`)).text();
      const stream = await fetch(`${http}/v1/stream/sse?token=${t}`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
      await stream?.body?.cancel();
      await (await fetch(`${http}/no/such/route?token=${t}`)).text();
      await (await fetch(`${http}/v1/bars?channel=bar.1m:BTC-USD&token=${t}`)).text();
    }
    // the refused and accepted attempts were logged (the sink works), without the tokens
    expect(logged).toContain('authentication failed');
    expect(logged).toContain('"user":"alice"');
    for (const s of secrets) expect(logged).not.toContain(s);
  });
});
