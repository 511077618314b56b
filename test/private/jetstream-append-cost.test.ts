import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { startNats } from '../helpers/servers.js';
import { testLog } from '../helpers/nats-client.js';

/**
 * The requests an append costs when several gateways append for the same user in turn (they share
 * the inbound work queue, so one user's executions alternate between them). Each append must count
 * from the user's newest event, which stale copies stored late can hide behind (the last
 * MAX_STALE_RUN + 1 messages); walking back that far on every append made each cost ~40 requests,
 * and under a node kill the two gateways of test/faults/inbound-cluster.test.ts fell so far
 * behind that buffered messages outlived their ack wait and went round between them (CI: 32 of
 * 1613 orders not in the log 25 s after the node was back). Counted in messages each gateway's
 * connection sent (requests and publishes), not in time.
 */
let server: Awaited<ReturnType<typeof startNats>>;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  server = await startNats();
  for (let i = 0; i < 2; i++) conns.push(await connect({ servers: server.url }));
});
afterAll(async () => {
  for (const c of conns) await c.close();
  await server?.destroy();
});

const exec = (n: number) => ({ id: `e${n}`, order: `o${n}`, sym: 'AAPL', side: 'buy' as const, qty: 1, p: 100, t: n });

describe('JetStream execution log: the cost of an append', () => {
  it("one writer appending a user's events one after another: the publish and the collision check, nothing more", async () => {
    const log = await testLog(conns[0]!, 'COST');
    try {
      const user = 'steady';
      for (let n = 1; n <= 5; n++) await log.append(user, exec(n));
      const before = conns[0]!.stats().outMsgs;
      const N = 40;
      for (let n = 6; n < 6 + N; n++) expect(await log.append(user, exec(n))).toEqual({ seq: n, duplicate: false });
      const perAppend = (conns[0]!.stats().outMsgs - before) / N;
      console.log(`[append-cost] one writer: ${perAppend.toFixed(1)} messages sent per append`);
      // counting from its own previous append without asking (the server refuses the publish if
      // anything was stored after it): before, each append also asked for the user's last message
      expect(perAppend).toBeLessThanOrEqual(2);
      // and a second writer in between is noticed: the first writer's next append is refused by
      // the server, counts again, and stays contiguous
      const other = await testLog(conns[1]!, 'COST');
      try {
        expect(await other.append(user, exec(100))).toEqual({ seq: 6 + N, duplicate: false });
        expect(await log.append(user, exec(101))).toEqual({ seq: 7 + N, duplicate: false });
      } finally {
        await other.close();
      }
      const stored = await log.read(user, 0, 100);
      expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: 7 + N }, (_, i) => i + 1));
    } finally {
      await log.close();
    }
  });

  it('two writers appending for one user in turn: each append counts from the newest in a few requests', async () => {
    const logs: JetStreamEventLog[] = [];
    // one stream, two instances (as two gateways), each on its own connection
    for (const nc of conns) logs.push(await testLog(nc, 'COST'));
    try {
      const user = 'alternating';
      const N = 60;
      // a user with some history (more than the stale-copy run a walk back looks past), and each
      // instance has appended
      const W = 20;
      for (let n = 1; n < W; n++) expect(await logs[0]!.append(user, exec(n))).toEqual({ seq: n, duplicate: false });
      expect(await logs[1]!.append(user, exec(W))).toEqual({ seq: W, duplicate: false });
      const before = conns.map((c) => c.stats().outMsgs);
      for (let n = W + 1; n <= W + N; n++) {
        // in turn, and now and then two in a row from the same writer
        const w = n % 5 === 0 ? (n - 1) % 2 : n % 2;
        expect(await logs[w]!.append(user, exec(n))).toEqual({ seq: n, duplicate: false });
      }
      const sent = conns.reduce((sum, c, i) => sum + c.stats().outMsgs - before[i]!, 0);
      const perAppend = sent / N;
      console.log(`[append-cost] ${sent} messages sent for ${N} appends: ${perAppend.toFixed(1)} each`);
      // the index look-up, the message this writer appended last, the other's few since, the
      // publish and the collision check: about 6; walking back 17 messages costs over 30
      expect(perAppend).toBeLessThanOrEqual(8);
      const stored = await logs[0]!.read(user, 0, 100);
      expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: W + N }, (_, i) => i + 1));
    } finally {
      for (const l of logs) await l.close();
    }
  });
});
