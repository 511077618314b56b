import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { jetstream } from '@nats-io/jetstream';
import { connect as connectNats } from '@nats-io/transport-node';
import { execLogSubject } from '../../src/bus/private-subjects.js';
import { api, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Identity strings end to end, in embedded mode and in NATS mode (real nats-server, JetStream):
 * ill-formed or non-printable ids are refused wherever they enter (token `sub`, service API body
 * and path), and distinct valid ids, however close, never share a stream. Before the fix, ids
 * differing only in a lone surrogate were accepted and, once NATS had encoded their subjects as
 * UTF-8, shared one (`exec.log.x\uFFFD`).
 */
type Server = TestServer & { destroy(): Promise<void> };
const isExec = (f: Frame) => f.op === 'data' && f.ch === 'executions';

/** Distinct valid ids whose subject tokens need escaping, or that are one escape away from each other. */
const VALID = ['a.b', 'a%2Eb', 'a%252Eb', 'a*', 'a>', 'a b', 'a \u00a0b', 'a', 'a\uFFFD', 'a%uD800', '😀', '😀.x', 'A.B', 'x@example.com', 'é', 'e\u0301'];
/** Refused: lone surrogates, C0/C1 controls, DEL, line/paragraph separators, empty, too long. */
const INVALID: Record<string, string> = {
  'lone high surrogate': 'eve\uD800',
  'lone low surrogate': 'eve\uDC00',
  'reversed pair': 'eve\uDC00\uD800',
  'C1 control (NEL)': 'eve\u0085',
  'C1 control (CSI)': 'eve\u009b',
  'C0 control': 'eve\u0001',
  DEL: 'eve\u007f',
  'line separator': 'eve\u2028',
  'paragraph separator': 'eve\u2029',
  'too long': 'e'.repeat(257),
};

let n = 0;
const exec = (user: string) => {
  n++;
  return { user, id: `id-${n}`, order: `o-${n}`, sym: 'AAPL', side: 'buy', qty: 1, p: 100 + n, t: Date.now() };
};

async function connect(engine: Engine, sub: string): Promise<TestClient> {
  return TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { headers: { authorization: `Bearer ${await token({ sub })}` }, encoding: 'json' });
}

async function upgradeStatus(engine: Engine, sub: string): Promise<number> {
  try {
    (await connect(engine, sub)).close();
    return 101;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? -1;
  }
}

function suite(mode: 'embedded' | 'nats'): void {
  describe(`identity strings (${mode} mode)`, () => {
    let nats: Server | undefined;
    let engine: Engine;
    beforeAll(async () => {
      if (mode === 'nats') nats = await startNats();
      engine = await startEngine(
        {
          host: '127.0.0.1',
          port: 0,
          log: { level: 'silent' },
          auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
          limits: { messagesPerSec: 0, connectionsPerIpPerSec: 0 },
          ...(nats ? { natsUrl: nats.url } : {}),
        },
        { roles: { feeds: [] }, env: {} },
      );
    }, 60_000);
    afterAll(async () => {
      await engine?.close();
      await nats?.destroy();
    });

    it('refuses ill-formed and non-printable ids in the token, the service API body and its path, with a clear error', async () => {
      for (const [what, id] of Object.entries(INVALID)) {
        expect(await upgradeStatus(engine, id), what).toBe(401);
        const r = await api(engine, 'POST', '/v1/executions', exec(id));
        expect(r.status, what).toBe(400);
        expect(r.body, what).toMatchObject({ error: 'BAD_REQUEST', field: 'user' });
        expect(r.body.message, what).toMatch(/surrogate|control|separator|at most 256|printable/i);
      }
      // the path: percent-encoded controls, separators and (not valid UTF-8) surrogates
      for (const enc of ['eve%C2%85', 'eve%01', 'eve%E2%80%A8', 'eve%ED%A0%80']) {
        for (const method of ['GET', 'PUT']) {
          const r = await api(engine, method, `/v1/users/${enc}/positions`, method === 'PUT' ? { ccy: 'USD', positions: [] } : undefined);
          expect(r.status, `${method} ${enc}`).toBe(400);
          expect(r.body, `${method} ${enc}`).toMatchObject({ error: 'BAD_REQUEST', field: 'user' });
        }
      }
      const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text();
      expect(metrics).toMatch(/^tickwire_auth_failures_total\{reason="bad_subject"\} [1-9]/m);
    });

    it('distinct valid ids get only their own executions', async () => {
      expect(new Set(VALID).size).toBe(VALID.length);
      const clients = new Map<string, TestClient>();
      for (const user of VALID) {
        const c = await connect(engine, user);
        await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false });
        clients.set(user, c);
      }
      const sent = new Map<string, string[]>();
      // two rounds: a stray execution of the first round would reach a client before its second one
      for (let round = 0; round < 2; round++) {
        for (const user of VALID) {
          const e = exec(user);
          const r = await api(engine, 'POST', '/v1/executions', e);
          expect(r, JSON.stringify(user)).toMatchObject({ status: 201, body: { user, seq: round + 1 } });
          sent.set(user, [...(sent.get(user) ?? []), e.id]);
        }
      }
      for (const user of VALID) {
        const c = clients.get(user)!;
        const got = await c.waitForCount(isExec, 2, 15_000);
        expect(
          got.map((f) => f.d.id),
          JSON.stringify(user),
        ).toEqual(sent.get(user));
        expect(got.map((f) => f.seq)).toEqual([1, 2]);
      }
      // a fresh subscriber replaying from the log sees its own history only
      for (const user of VALID) {
        const c = await connect(engine, user);
        await c.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 });
        const got = await c.waitForCount(isExec, 2, 15_000);
        expect(
          got.map((f) => f.d.id),
          JSON.stringify(user),
        ).toEqual(sent.get(user));
        c.close();
      }
      for (const user of VALID) expect(clients.get(user)!.frames.filter(isExec), JSON.stringify(user)).toHaveLength(2);
      for (const c of clients.values()) c.close();
    }, 60_000);

    if (mode === 'nats') {
      it('exec.in.<user>: a user that is not valid, or not spelled as the escaper spells it, is refused', async () => {
        const nc = await connectNats({ servers: nats!.url });
        try {
          const c = await connect(engine, 'inb');
          await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false });
          const js = jetstream(nc);
          const body = (id: string) => JSON.stringify({ id, order: 'o', sym: 'AAPL', side: 'buy', qty: 1, p: 1, t: Date.now() });
          await js.publish('exec.in.%69nb', body('non-canonical')); // "inb" spelled with an escape
          await js.publish('exec.in.inb%85', body('c1')); // "inb" + NEL
          await js.publish('exec.in.inb%uD800', body('surrogate'));
          await js.publish('exec.in.inb', body('sentinel'));
          const got = await c.waitFor(isExec, 15_000);
          expect(got).toMatchObject({ seq: 1, d: { id: 'sentinel' } });
          for (const user of ['inb\u0085', 'inb\uD800']) expect(await engine.private!.events.head(user)).toBe(0);
          expect(await engine.private!.events.head('inb')).toBe(1);
          c.close();
        } finally {
          await nc.close();
        }
      });

      it('subjects of ids that differ only in a lone surrogate or a control stay apart on a real nats-server', async () => {
        const nc = await connectNats({ servers: nats!.url });
        try {
          const pairs: [string, string][] = [
            ['x\uD800', 'x\uDC00'],
            ['x\uD800', 'x\uFFFD'],
            ['x\uDBFF\uDFFF', 'x\uDFFF\uDBFF'],
            ['x\u0085', 'x\u0001'],
            ['x\r\n', 'x\n'],
          ];
          for (const [a, b] of pairs) {
            const subject = execLogSubject(b);
            expect(execLogSubject(a)).not.toBe(subject);
            const got: string[] = [];
            const sub = nc.subscribe(subject, { callback: (_e, m) => void got.push(new TextDecoder().decode(m.data)) });
            await nc.flush();
            nc.publish(execLogSubject(a), 'other user');
            nc.publish(subject, 'sentinel');
            await nc.flush();
            await waitFor(() => got.includes('sentinel'));
            expect(got, JSON.stringify([a, b])).toEqual(['sentinel']);
            sub.unsubscribe();
          }
        } finally {
          await nc.close();
        }
      });
    }
  });
}

suite('embedded');
suite('nats');
