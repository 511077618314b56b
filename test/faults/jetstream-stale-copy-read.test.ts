import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

/**
 * After a SIGKILL a clustered stream can store late a stale copy of an execution, with a per-user
 * seq below the newest (nats-server 2.9 in test/faults/inbound-cluster.test.ts; the log skips
 * it). A read finds its start by binary search over stream sequences, where per-user seqs grow
 * with the stream sequence, except at such a copy: a probe landing on it must not make the read
 * start past events stored before it. The stream's state is written directly on one node.
 */
const USER = 'u1';
let nats: TestServer & { destroy(): Promise<void> };
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.destroy();
});

const exec = (n: number) => ({ id: `e${n}`, order: `o${n}`, sym: 'AAPL', side: 'buy' as const, qty: 1, p: 100, t: n });
const expected = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}:e${from + i}`);

describe('JetStream execution log: a read across a stale copy stored late', () => {
  it('starts at the first event after `since`, not past it, wherever the copy is', async () => {
    const log = await JetStreamEventLog.open(nc, {
      stream: 'STALE',
      inboundStream: 'STALE_IN',
      dedupWindowMs: 60_000,
      retentionMs: 3_600_000,
      maxPerUser: 1000,
      replicas: 1,
    });
    const js = jetstream(nc);
    const publish = (seq: number, n: number) => js.publish(`exec.log.${USER}`, JSON.stringify({ seq, d: exec(n) }));
    // stream sequences 1-19: seqs 1-19; 20: a stale copy of seq 3; 21-40: seqs 20-39
    for (let n = 1; n <= 19; n++) await publish(n, n);
    await publish(3, 3);
    for (let n = 20; n <= 39; n++) await publish(n, n);
    const ids = async (after: number, limit: number) => (await log.read(USER, after, limit)).map((e) => `${e.seq}:${e.d.id}`);
    for (const after of [0, 2, 5, 10, 15, 18, 19, 25]) {
      expect(await ids(after, 5), `after ${after}, a short read`).toEqual(expected(after + 1, after + 5));
      expect(await ids(after, 100), `after ${after}, a long read`).toEqual(expected(after + 1, 39));
    }
    // appending goes on after the newest seq
    expect(await log.append(USER, exec(40))).toEqual({ seq: 40, duplicate: false });
    expect(await ids(38, 5)).toEqual(expected(39, 40));
    await log.close();
  });
});
