import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { MAX_SUBPROTOCOLS } from '../../src/codec/frames.js';
import { RawWs } from '../helpers/raw-ws.js';
import { rawHttp, upgradeRequest } from './kit.js';

/**
 * Upgrades cheap to send and dear to answer, before any per-address limit applies (the
 * subprotocol decides the encoding before the address is admitted). A Sec-WebSocket-Protocol of
 * 50 000 entries (100 KB) was split into 50 000 strings, each trimmed and compared: about 4 ms
 * of a gateway worker's event loop per upgrade, 16-50 ms for 100 000 entries, with no token and
 * no limit; 4 sockets of one address sending such upgrades took a bystander's ping from 0.7 ms to
 * 13 ms median and 4.2 s of CPU in 6 s (measured against a `tickwire start` process).
 */
describe('hostile: dear WebSocket handshakes', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], limits: { exemptIps: [] } }, { env: {} });
  });
  afterAll(() => engine?.close());

  it(`an offer of more than ${MAX_SUBPROTOCOLS} subprotocols is refused 400 BAD_SUBPROTOCOL naming the limit, whatever it offers after them`, async () => {
    for (const entries of [MAX_SUBPROTOCOLS + 1, 50_000]) {
      const offer = [...Array.from({ length: entries - 1 }, () => 'a'), 'tickwire.v1.json'].join(',');
      const r = await rawHttp(engine.port, upgradeRequest([`Sec-WebSocket-Protocol: ${offer}`]), { waitMs: 3000 });
      expect(r.status, `${entries} entries`).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ error: 'BAD_SUBPROTOCOL', message: expect.stringContaining(`more than ${MAX_SUBPROTOCOLS} subprotocols`) });
    }
    expect((await fetch(`http://127.0.0.1:${engine.port}/health`)).status).toBe(200);
  });

  it(`${MAX_SUBPROTOCOLS} subprotocols, ours last, and the token entry among them: upgraded`, async () => {
    const offer = [...Array.from({ length: MAX_SUBPROTOCOLS - 2 }, (_, i) => `x${i}`), 'tickwire.bearer.abc', 'tickwire.v1.json'].join(', ');
    const ws = await RawWs.connect(engine.port, { protocol: offer });
    expect(ws.handshake).toMatch(/\r\nsec-websocket-protocol: tickwire\.v1\.json(\r\n|$)/i);
    ws.destroy();
  });
});
