import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats } from '../helpers/servers.js';
import { SseTestClient } from '../helpers/sse-client.js';
import type { Frame } from '../helpers/sse-client.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';
import { slowLink } from '../helpers/slow-link.js';

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

describe('HTTP-streaming fallback across gateway processes (NATS)', () => {
  // two gateway processes behind one load balancer that has no session affinity: a POST may
  // reach the process that does not hold its session. Before, it was answered 404 and the SDK
  // opened a new stream (docs/protocol.md told operators to route by client address).
  let nats: Awaited<ReturnType<typeof startNats>>;
  let a: Engine;
  let b: Engine;
  beforeAll(async () => {
    nats = await startNats();
    const gateway = () =>
      startEngine(
        { natsUrl: nats.url, host: '127.0.0.1', port: 0, log: { level: 'silent' }, ops: { statsLogSec: 0 }, gateway: { workers: 1 } },
        { env: {}, roles: { gateway: true, feeds: [] } },
      );
    [a, b] = await Promise.all([gateway(), gateway()]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await nats?.destroy();
  });

  it('a POST that reaches the other process is handed to the session there, in order; once the stream ends it is a 404', async () => {
    const s = await SseTestClient.open(a.port);
    try {
      await s.waitFrame((f) => f.op === 'welcome', 'welcome');
      for (let id = 1; id <= 6; id++) {
        const r = await postFresh(id % 2 ? b.port : a.port, s.session!, [{ op: 'ping', id }]);
        expect(r.status, `POST ${id}: ${r.body}`).toBe(204);
      }
      await s.waitFor(() => s.frames.filter((f: Frame) => f.op === 'pong').length === 6, 'six pongs');
      expect(s.frames.filter((f: Frame) => f.op === 'pong').map((f: Frame) => f.id)).toEqual([1, 2, 3, 4, 5, 6]);
      const ack = await postFresh(b.port, s.session!, [{ op: 'subscribe', id: 7, channels: ['quote:AAPL'] }]);
      expect(ack.status).toBe(204);
      await s.waitFrame((f) => f.op === 'ack' && f.id === 7, 'the ack of a subscribe sent through the other process');
      // an id no process holds: 404 from either
      const unknown = await postFresh(b.port, 'B'.repeat(24), [{ op: 'ping', id: 1 }]);
      expect(unknown.status).toBe(404);
      expect(JSON.parse(unknown.body)).toMatchObject({ error: 'UNKNOWN_SESSION' });
    } finally {
      s.close();
    }
    // the session ends with its stream: no process takes its POSTs any more
    await expect.poll(async () => (await postFresh(b.port, s.session!, [{ op: 'ping', id: 9 }])).status, { timeout: 10_000 }).toBe(404);
  });
});

describe('HTTP-streaming fallback across gateway processes, one of them on a slow link to NATS', () => {
  // Gateway `a` reaches NATS through a proxy that holds what `a` sends for LINK_DELAY_MS (a NATS
  // server in another zone): the subscription that makes a session reachable arrives that much
  // later. A client that gets its session id and POSTs through `b` at once must still reach it:
  // before, `b` found no responder and answered 404 UNKNOWN_SESSION.
  const LINK_DELAY_MS = 300;
  let nats: Awaited<ReturnType<typeof startNats>>;
  let proxy: Awaited<ReturnType<typeof slowLink>>;
  let a: Engine;
  let b: Engine;
  beforeAll(async () => {
    nats = await startNats();
    proxy = await slowLink(Number(new URL(nats.url).port), LINK_DELAY_MS);
    const slowUrl = `nats://127.0.0.1:${proxy.port}`;
    const gateway = (natsUrl: string) =>
      startEngine(
        { natsUrl, host: '127.0.0.1', port: 0, log: { level: 'silent' }, ops: { statsLogSec: 0 }, gateway: { workers: 1 } },
        { env: {}, roles: { gateway: true, feeds: [] } },
      );
    [a, b] = await Promise.all([gateway(slowUrl), gateway(nats.url)]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    await proxy?.close();
    await nats?.destroy();
  });

  it('a session is reachable from the other process as soon as its id is on the stream', async () => {
    const sessions = await Promise.all(Array.from({ length: 5 }, () => SseTestClient.open(a.port)));
    try {
      const posts = await Promise.all(sessions.map((s, i) => postFresh(b.port, s.session!, [{ op: 'ping', id: i + 1 }])));
      expect(posts.map((p) => `${p.status} ${p.body}`)).toEqual(sessions.map(() => '204 '));
      for (const [i, s] of sessions.entries()) await s.waitFrame((f) => f.op === 'pong' && f.id === i + 1, `the pong of session ${i}`);
    } finally {
      for (const s of sessions) s.close();
    }
  });
});
