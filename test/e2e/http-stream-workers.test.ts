import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { SseTestClient } from '../helpers/sse-client.js';
import type { Frame } from '../helpers/sse-client.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';

/**
 * The HTTP-streaming fallback through gateway workers (the default on a host with several
 * cores). A session lives on the worker whose event loop took its `GET`; its `POST`s arrive on
 * new connections, which the kernel spreads over the workers, so most land elsewhere half the
 * time. Each POST must reach the session wherever it lands: before, a POST on another worker was
 * answered 404 "no open session" and the SDK dropped the connection.
 */
interface Posted {
  status: number;
  body: string;
}

/** POST on a new TCP connection each time (no keep-alive pool that would pin one worker). */
function postFresh(port: number, session: string, frames: object[]): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const body = frames.map((f) => JSON.stringify(f)).join('\n');
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1/stream/sse',
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'text/plain', 'x-tickwire-session': session },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('HTTP-streaming fallback through gateway workers (embedded, 2 workers)', () => {
  const gw = embeddedWorkers({ auth: { mode: 'off' }, synthetic: { rate: 400, seed: 3 } });

  it('delivers every POST to its session whichever worker takes it, in order', async () => {
    const sessions: SseTestClient[] = [];
    try {
      for (let i = 0; i < 4; i++) sessions.push(await SseTestClient.open(gw.port));
      for (const [i, s] of sessions.entries()) {
        await s.waitFrame((f) => f.op === 'welcome', 'welcome');
        // ten requests, each POSTed on its own connection and awaited, as the SDK sends them
        for (let id = 1; id <= 10; id++) {
          const r = await postFresh(gw.port, s.session!, [{ op: 'ping', id }]);
          expect(r.status, `session ${i}, POST ${id}: ${r.body}`).toBe(204);
        }
        await s.waitFor(() => s.frames.filter((f: Frame) => f.op === 'pong').length === 10, 'ten pongs');
        expect(s.frames.filter((f: Frame) => f.op === 'pong').map((f: Frame) => f.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        const ack = await postFresh(gw.port, s.session!, [{ op: 'subscribe', id: 11, channels: ['quote:BTC-USD'] }]);
        expect(ack.status).toBe(204);
        await s.waitFrame((f) => f.op === 'ack' && f.id === 11, 'the ack');
        await s.waitFrame((f) => f.op === 'data' && f.ch === 'quote:BTC-USD', 'data of the subscription');
      }
      // a session that does not exist anywhere is still a 404 naming it, whether or not its id
      // has the form of one (only such ids are asked about on the other workers)
      for (const id of ['no-such-session', 'A'.repeat(24)]) {
        const unknown = await postFresh(gw.port, id, [{ op: 'ping', id: 1 }]);
        expect(unknown.status, id).toBe(404);
        expect(JSON.parse(unknown.body)).toMatchObject({ error: 'UNKNOWN_SESSION' });
      }
    } finally {
      for (const s of sessions) s.close();
    }
  });
});
