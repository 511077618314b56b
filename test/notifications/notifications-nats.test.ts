import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { NOTIF_INBOUND_DURABLE } from '../../src/notifications/inbound-consumer.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { api, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';

const isNote = (f: Frame) => f.op === 'data' && f.ch === 'notifications' && f.d.kind === 'notification';
const isRead = (f: Frame) => f.op === 'data' && f.ch === 'notifications' && f.d.kind === 'read';

/** NATS mode: the JetStream log, notif.in fan-in, and two gateways sharing read state. */
describe('notifications over NATS (JetStream log, two gateways)', () => {
  let nats: TestServer & { destroy(): Promise<void> };
  let nc: NatsConnection;
  const engines: Engine[] = [];
  beforeAll(async () => {
    nats = await startNats();
    nc = await connect({ servers: nats.url });
  });
  afterAll(async () => {
    for (const e of engines) await e.close();
    await nc?.close();
    await nats?.destroy();
  });
  const gateway = async (): Promise<Engine> => {
    const e = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' }, natsUrl: nats.url, auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } },
      { roles: { feeds: [] }, env: {} },
    );
    engines.push(e);
    return e;
  };
  const client = async (e: Engine, sub: string) =>
    TestClient.connect(`ws://127.0.0.1:${e.port}/v1/stream`, { headers: { authorization: `Bearer ${await token({ sub })}` }, encoding: 'json' });

  it('takes notifications from notif.in.<user> with the same validation and dedup, and shares read state across gateways', async () => {
    const [g1, g2] = [await gateway(), await gateway()];
    const a = await client(g1, 'ola.b');
    const b = await client(g2, 'ola.b');
    for (const c of [a, b]) await c.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    // the gateways consume notif.in through one durable consumer, which they create on start
    const jsm = await jetstreamManager(nc);
    await waitFor(() => jsm.consumers.info(g1.config.notifications.inboundStream, NOTIF_INBOUND_DURABLE), 'the notif.in consumer');
    const js = jetstream(nc);
    const subject = 'notif.in.ola%2Eb';
    await js.publish(subject, JSON.stringify({ id: 'bad', type: 'x', title: '' }));
    await js.publish(subject, 'not json');
    await js.publish('notif.in.%6Fla', JSON.stringify({ id: 'n', type: 'x', title: 'wrong spelling of a user' }));
    const n = { id: 'risk-1', type: 'risk.warning', title: 'Margin at 85 %', priority: 'urgent' };
    await js.publish(subject, JSON.stringify(n));
    await js.publish(subject, JSON.stringify(n)); // duplicate
    for (const c of [a, b]) expect((await c.waitFor(isNote, 15_000)).d).toMatchObject({ ...n, body: '', kind: 'notification' });
    // the service API on the other gateway writes to the same log
    expect(await api(g2, 'POST', '/v1/users/ola.b/notifications', { id: 'n-2', type: 'order.filled', title: 'Filled' })).toMatchObject({
      status: 201,
      body: { seq: 2 },
    });
    await a.waitForCount(isNote, 2, 15_000);
    // read in-band on gateway 1: the marker reaches the connection on gateway 2
    expect(await a.request({ op: 'notifications.read', id: 2, upTo: 2 })).toMatchObject({ seq: 3, unread: 0 });
    expect((await b.waitFor(isRead, 15_000)).d).toMatchObject({ upTo: 2 });
    await quietFor(300, 'a second copy of a notification (the duplicate publish on notif.in)');
    expect(a.frames.filter(isNote)).toHaveLength(2);
    expect((await api(g1, 'GET', '/v1/users/ola.b/notifications')).body).toMatchObject({ unread: 0, head: 3 });
    // a new connection has nothing unread: it gets no old notification
    const c = await client(g2, 'ola.b');
    await c.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    await api(g1, 'POST', '/v1/users/ola.b/notifications', { id: 'n-3', type: 'order.filled', title: 'Filled again' });
    expect((await c.waitFor(isNote, 15_000)).d.id).toBe('n-3');
    expect(c.frames.filter(isNote)).toHaveLength(1);
    for (const x of [a, b, c]) x.close();
  }, 60_000);

  it('terminates a notif.in message whose data nests 100 000 deep (a poison message), instead of redelivering it for ever', async () => {
    const g = engines[0] ?? (await gateway());
    const a = await client(g, 'poison');
    await a.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    const jsm = await jetstreamManager(nc);
    const stream = g.config.notifications.inboundStream;
    await waitFor(() => jsm.consumers.info(stream, NOTIF_INBOUND_DURABLE), 'the notif.in consumer');
    const js = jetstream(nc);
    const deep = '{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000);
    await js.publish('notif.in.poison', `{"id":"deep","type":"x","title":"t","data":${deep}}`);
    await js.publish('notif.in.poison', JSON.stringify({ id: 'after', type: 'x', title: 'after the poison' }));
    expect((await a.waitFor(isNote, 15_000)).d.id).toBe('after');
    // refused (terminated): nothing waits for an ack or a delivery, and the work queue is empty
    await waitFor(
      async () => {
        const ci = await jsm.consumers.info(stream, NOTIF_INBOUND_DURABLE);
        const si = await jsm.streams.info(stream);
        return ci.num_ack_pending === 0 && ci.num_pending === 0 && si.state.messages === 0;
      },
      { what: 'the poison message terminated', timeout: 10_000 },
    );
    expect(a.frames.filter(isNote).map((f) => f.d.id)).toEqual(['after']);
    a.close();
  }, 60_000);
});
