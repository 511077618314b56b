import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine, EngineRoles } from '../../src/app/engine.js';
import { startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';

type Server = TestServer & { destroy(): Promise<void> };
const isExec = (f: Frame) => f.op === 'data' && f.ch === 'executions';

let nats: Server;
let redis: Server;
let nc: NatsConnection;
const engines: Engine[] = [];

function natsEngine(roles: Partial<EngineRoles> = { feeds: [] }, extra: Record<string, unknown> = {}): Promise<Engine> {
  return startEngine(
    {
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      natsUrl: nats.url,
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      ...extra,
    },
    { roles, env: {} },
  ).then((e) => {
    engines.push(e);
    return e;
  });
}

async function client(engine: Engine, sub: string): Promise<TestClient> {
  return TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { headers: { authorization: `Bearer ${await token({ sub })}` }, encoding: 'json' });
}

let n = 0;
const exec = (user: string, extra: Record<string, unknown> = {}) => {
  n++;
  return { user, id: `n-${n}`, order: `o-${n}`, sym: 'MSFT', side: 'buy', qty: 2, p: 400 + n, t: Date.now(), ...extra };
};

beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  await nc?.close();
  await Promise.all([nats?.destroy(), redis?.destroy()]);
});

describe('executions over NATS (JetStream)', () => {
  it('replays after `since` on a restarted gateway, then continues live without gap or duplicate', async () => {
    const g1 = await natsEngine();
    for (let i = 0; i < 3; i++) expect((await api(g1, 'POST', '/v1/executions', exec('kim'))).body.seq).toBe(i + 1);
    const c1 = await client(g1, 'kim');
    await c1.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 });
    expect((await c1.waitForCount(isExec, 3)).map((f) => f.seq)).toEqual([1, 2, 3]);
    await g1.close();
    expect(await c1.waitClose()).toBe(1001);

    const g2 = await natsEngine();
    for (let i = 0; i < 2; i++) await api(g2, 'POST', '/v1/executions', exec('kim'));
    const c2 = await client(g2, 'kim');
    await c2.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 3, throttle: 50 });
    expect((await c2.waitForCount(isExec, 2)).map((f) => f.seq)).toEqual([4, 5]);
    const live = exec('kim');
    expect((await api(g2, 'POST', '/v1/executions', live)).body.seq).toBe(6);
    const got = await c2.waitForCount(isExec, 3);
    expect(got[2]).toMatchObject({ seq: 6, d: { id: live.id, sym: 'MSFT', qty: 2 } });
    await api(g2, 'POST', '/v1/executions', exec('kim')); // a sentinel: a repeat would come before it
    await c2.waitFor((f) => isExec(f) && f.seq === 7);
    expect(c2.frames.filter(isExec).map((f) => f.seq)).toEqual([4, 5, 6, 7]);

    const full = await client(g2, 'kim');
    await full.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 });
    expect((await full.waitForCount(isExec, 7)).map((f) => f.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    c2.close();
    full.close();
  });

  it('delivers an execution recorded on one gateway to a client of another, once', async () => {
    const ga = await natsEngine();
    const gb = await natsEngine();
    const c = await client(ga, 'lena');
    await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false });
    const e = exec('lena');
    expect((await api(gb, 'POST', '/v1/executions', e)).status).toBe(201);
    expect((await api(ga, 'POST', '/v1/executions', e)).body).toMatchObject({ seq: 1, duplicate: true });
    // the id with other content, on the other gateway: read back from JetStream and refused
    expect(await api(ga, 'POST', '/v1/executions', { ...e, qty: e.qty + 1 })).toMatchObject({ status: 409, body: { error: 'CONFLICT', field: 'qty' } });
    const got = await c.waitFor(isExec);
    expect(got).toMatchObject({ seq: 1, d: { id: e.id } });
    await api(gb, 'POST', '/v1/executions', exec('lena')); // a sentinel: a repeat would come before it
    await c.waitFor((f) => isExec(f) && f.seq === 2);
    expect(c.frames.filter(isExec).map((f) => f.seq)).toEqual([1, 2]);
    c.close();
  });

  it('takes executions from order systems on exec.in.<user>, dropping invalid ones', async () => {
    const g = await natsEngine();
    const c = await client(g, 'mia.k');
    await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false });
    const js = jetstream(nc);
    const subject = 'exec.in.mia%2Ek';
    await js.publish(subject, JSON.stringify({ id: 'bad', order: 'o', sym: 'MSFT', side: 'sideways', qty: 1, p: 1, t: 1 }));
    await js.publish(subject, 'not json');
    const e = { id: 'in-1', order: 'ord-1', sym: 'MSFT', side: 'sell', qty: 3, p: 410.5, fee: 0.25, t: Date.now() };
    await js.publish(subject, JSON.stringify(e));
    await js.publish(subject, JSON.stringify(e)); // duplicate
    await js.publish(subject, JSON.stringify({ ...e, qty: 4 })); // the id with other content: refused, never delivered
    const got = await c.waitFor(isExec, 15_000);
    expect(got).toMatchObject({ seq: 1, d: e });
    await js.publish(subject, JSON.stringify({ ...e, id: 'in-2' })); // a sentinel: a repeat of in-1 would come before it
    await c.waitFor((f) => isExec(f) && f.d.id === 'in-2', 15_000);
    expect(c.frames.filter(isExec).map((f) => [f.seq, f.d.id])).toEqual([
      [1, 'in-1'],
      [2, 'in-2'],
    ]);
    c.close();
  });

  it('Nats-Msg-Id must be unique across users: the stream deduplicates by it whatever the subject', async () => {
    const g = await natsEngine();
    const [ann, ben] = [await client(g, 'ann'), await client(g, 'ben')];
    for (const c of [ann, ben]) await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false });
    const js = jetstream(nc);
    const e = { id: 'fill-1', order: 'o-1', sym: 'MSFT', side: 'buy', qty: 1, p: 410, t: Date.now() };
    // the execution id alone (the advice docs/operations.md gave): ben's fill-1 is taken for ann's, never stored
    expect((await js.publish('exec.in.ann', JSON.stringify(e), { msgID: e.id })).duplicate).toBe(false);
    expect((await js.publish('exec.in.ben', JSON.stringify(e), { msgID: e.id })).duplicate).toBe(true);
    // the user and the id (docs/private-streams.md, "From an order system over NATS"): each user's is stored
    const f = { ...e, id: 'fill-2' };
    for (const user of ['ann', 'ben']) expect((await js.publish(`exec.in.${user}`, JSON.stringify(f), { msgID: `${user}:${f.id}` })).duplicate).toBe(false);
    for (const c of [ann, ben]) await c.waitFor((fr) => isExec(fr) && fr.d.id === 'fill-2', 15_000);
    expect(ann.frames.filter(isExec).map((fr) => fr.d.id)).toEqual(['fill-1', 'fill-2']);
    expect(ben.frames.filter(isExec).map((fr) => fr.d.id)).toEqual(['fill-2']);
    ann.close();
    ben.close();
  });
});

describe('portfolio service as its own process role (NATS, Redis positions)', () => {
  it('answers positions through the gateway and streams valuations to the user', async () => {
    const gNoSvc = await natsEngine();
    const unavailable = await api(gNoSvc, 'GET', '/v1/users/nina/positions');
    expect(unavailable.status).toBe(503);
    await gNoSvc.close();

    const portfolio = await natsEngine(
      { gateway: false, feeds: [], portfolio: true },
      { redisUrl: redis.url, portfolio: { publishMs: 100, redisKeyPrefix: 'nats-test:pf:' } },
    );
    expect(portfolio.gateway).toBeUndefined();
    const g = await natsEngine();
    const put = await api(g, 'PUT', '/v1/users/nina/positions', { ccy: 'EUR', positions: [{ sym: 'AAPL', qty: 10, cost: 2000 }] });
    expect(put).toMatchObject({ status: 200, body: { user: 'nina', ccy: 'EUR', positions: [{ sym: 'AAPL', qty: 10, cost: 2000 }] } });
    expect((await api(g, 'GET', '/v1/users/nina/positions')).body.positions).toEqual([{ sym: 'AAPL', qty: 10, cost: 2000 }]);
    expect((await api(g, 'GET', '/v1/users/nobody/positions')).status).toBe(404);
    const bad = await api(g, 'PUT', '/v1/users/nina/positions', { ccy: 'EUR', positions: [{ sym: 'NOPE', qty: 1, cost: 1 }] });
    expect(bad).toMatchObject({ status: 400, body: { field: 'positions.0.sym' } });

    const c = await client(g, 'nina');
    await c.request({ op: 'subscribe', id: 1, channels: ['portfolio'] });
    // the same prices again until the service has subscribed to them and values the book
    const v = await waitFor(
      () => {
        publishTick(g, 'forex', { k: 'quote', sym: 'EUR-USD', bp: 1.2499, ap: 1.2501 } as never);
        publishTick(g, 'stock', { k: 'ticker', sym: 'AAPL', p: 250, bp: 249.9, ap: 250.1, o: 240, h: 251, l: 239, v: 1000, chg: 10, chgp: 4.1667 } as never);
        return c.frames.find((f) => f.op === 'data' && f.ch === 'portfolio' && f.d.value > 0);
      },
      { what: 'a valuation of the book', timeout: 15_000, interval: 200 },
    );
    expect(v.d.ccy).toBe('EUR');
    expect(v.d.value).toBeCloseTo(2000, 6); // 10 x 250 USD / 1.25
    expect(v.d.cost).toBeCloseTo(1600, 6);
    expect(v.d.pnl).toBeCloseTo(400, 6);
    expect(v.d.day_pnl).toBeCloseTo(80, 6); // 10 x (250 - 240) / 1.25
    expect(v.d.positions[0]).toMatchObject({ sym: 'AAPL', qty: 10, p: 250, value: 2500, pnl: 500, ccy: 'USD' });

    // an execution recorded at the gateway reaches the portfolio service through JetStream
    await api(g, 'POST', '/v1/executions', exec('nina', { sym: 'AAPL', side: 'buy', qty: 5, p: 250 }));
    const after = await c.waitFor((f) => f.op === 'data' && f.ch === 'portfolio' && f.d.positions[0]?.qty === 15, 15_000);
    expect(after.d.value).toBeCloseTo(3000, 6);
    await waitFor(async () => (await api(g, 'GET', '/v1/users/nina/positions')).body.positions[0].qty === 15);
    c.close();

    // positions survive a restart of the service (Redis), and nothing is applied twice
    await portfolio.close();
    const again = await natsEngine(
      { gateway: false, feeds: [], portfolio: true },
      { redisUrl: redis.url, portfolio: { publishMs: 100, redisKeyPrefix: 'nats-test:pf:' } },
    );
    expect((await api(g, 'GET', '/v1/users/nina/positions')).body).toMatchObject({ ccy: 'EUR', positions: [{ sym: 'AAPL', qty: 15, cost: 3250 }] });
    // a sentinel execution: once the restarted service has applied it, a replay of the earlier
    // one would have been applied too
    await api(g, 'POST', '/v1/executions', exec('nina', { sym: 'AAPL', side: 'buy', qty: 1, p: 250 }));
    await waitFor(async () => (await api(g, 'GET', '/v1/users/nina/positions')).body.positions[0].qty !== 15, {
      what: 'the sentinel execution applied',
      timeout: 15_000,
    });
    expect((await api(g, 'GET', '/v1/users/nina/positions')).body).toMatchObject({ ccy: 'EUR', positions: [{ sym: 'AAPL', qty: 16, cost: 3500 }] });
    await again.close();
  });
});

describe('a service role is reachable when its start resolves', () => {
  it('answers pf.rpc at once after startEngine: its subscription is on the server by then', async () => {
    for (let i = 0; i < 8; i++) {
      const pf = await natsEngine({ gateway: false, feeds: [], portfolio: true }, { redisUrl: redis.url, portfolio: { redisKeyPrefix: `nats-test:pf-${i}:` } });
      try {
        // another connection asks at once: "no responders" if the service's subscription was still in flight
        const reply = await nc.request('pf.rpc', new TextEncoder().encode(JSON.stringify({ op: 'get', user: 'nobody' })), { timeout: 5000 });
        expect(JSON.parse(new TextDecoder().decode(reply.data))).toEqual({ ok: true, result: null });
      } finally {
        await pf.close();
        engines.splice(engines.indexOf(pf), 1);
      }
    }
  });
});
