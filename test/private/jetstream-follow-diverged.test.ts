import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamClient } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/executions/event-log.js';
import { natsClient, testLog } from '../helpers/nats-client.js';
import { waitFor } from '../helpers/wait.js';

/**
 * nats-server places a follower's consumer on any replica of the executions stream, and after a
 * node was killed a replica can hold another message than the stream leader at the same stream
 * sequence (seen with nats-server 2.9; see JetStreamEventLog.read). A follower on such a replica
 * handed its copy on: in test/faults/nats-cluster.test.ts the portfolio's book ended one
 * execution off (AAPL 15452 for 15453 with every seq applied) while the gateways' clients had the
 * leader's log. What a follower hands on is what the leader holds.
 *
 * The replica is played by the consumer the follower gets first (on one real nats-server, the
 * leader): it delivers the stream's messages with one of them replaced or left in place after
 * the leader removed it.
 */
const nats = natsClient();
const exec = (id: string, qty = 1) => ({ id, order: `o-${id}`, sym: 'AAPL', side: 'buy' as const, qty, p: 100, t: 1 });

interface Fake {
  seq: number;
  subject: string;
  data: Uint8Array;
}

/** The first consumer the log asks `js` for delivers `msgs`, then waits like a live consumer until stopped. */
function replicaOnce(js: JetStreamClient, msgs: Fake[]): { stopped: () => boolean } {
  const consumers = js.consumers;
  const real = consumers.get.bind(consumers);
  let used = false;
  let stopped = false;
  (consumers as { get: unknown }).get = async (...args: Parameters<typeof real>) => {
    if (used) return real(...args);
    used = true;
    let stop!: () => void;
    const done = new Promise<void>((r) => (stop = r));
    const messages = {
      stop() {
        stopped = true;
        stop();
      },
      closed: () => done.then(() => null),
      status: () => ({ [Symbol.asyncIterator]: () => ({ next: () => done.then(() => ({ done: true as const, value: undefined })) }) }),
      async *[Symbol.asyncIterator]() {
        for (const m of msgs) {
          if (stopped) return;
          yield m;
        }
        await done;
      },
    };
    return { consume: async () => messages, delete: async () => true };
  };
  return { stopped: () => stopped };
}

async function follow(log: Awaited<ReturnType<typeof testLog>>, count: number): Promise<[string, number, string][]> {
  const got: [string, number, string][] = [];
  const stop = log.follow((user, ev: StoredEvent) => got.push([user, ev.seq, ev.d.id]), { after: 0 });
  await waitFor(() => got.length >= count, { what: `${count} events handed on`, timeout: 10_000 }).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(got)}`);
  });
  stop();
  return got;
}

describe('JetStream execution log: a follower on a replica that differs from the leader', () => {
  it("hands on the leader's message, not the replica's other one at that stream sequence", async () => {
    const log = await testLog(nats.nc, 'FDIV');
    for (const id of ['a', 'b', 'c']) await log.append('u1', exec(id));
    const jsm = await jetstreamManager(nats.nc);
    const leader = await Promise.all([1, 2, 3].map((seq) => jsm.streams.getMessage('FDIV', { seq })));
    // the replica holds another execution with seq 2 where the leader holds "b"
    const other = new TextEncoder().encode(JSON.stringify({ seq: 2, d: exec('x', 5) }));
    const replica = replicaOnce(
      log.client,
      leader.map((m, i) => ({ seq: m!.seq, subject: m!.subject, data: i === 1 ? other : m!.data })),
    );
    expect(await follow(log, 3)).toEqual([
      ['u1', 1, 'a'],
      ['u1', 2, 'b'],
      ['u1', 3, 'c'],
    ]);
    expect(replica.stopped()).toBe(true); // that consumer was left
    // and new messages still come (a new consumer after the leader's walk)
    await log.append('u1', exec('d'));
    expect((await follow(log, 4)).at(-1)).toEqual(['u1', 4, 'd']);
    await log.close();
  });

  it('passes over a message the leader no longer holds (a copy removed after a collision)', async () => {
    const log = await testLog(nats.nc, 'FGONE', { logPrefix: 'gone.log.', inPrefix: 'gone.in.' });
    const js = jetstream(nats.nc);
    await log.append('u1', exec('a'));
    // a loser's copy with seq 1, removed by its writer after the consumer delivered it
    const copy = await js.publish('gone.log.u1', JSON.stringify({ seq: 1, d: exec('z') }));
    await log.append('u1', exec('b'));
    const jsm = await jetstreamManager(nats.nc);
    const msgs = await Promise.all([1, 2, 3].map((seq) => jsm.streams.getMessage('FGONE', { seq })));
    await jsm.streams.deleteMessage('FGONE', copy.seq, false);
    replicaOnce(
      log.client,
      msgs.map((m) => ({ seq: m!.seq, subject: m!.subject, data: m!.data })),
    );
    const got = await follow(log, 2);
    expect(got).toEqual([
      ['u1', 1, 'a'],
      ['u1', 2, 'b'],
    ]);
    await log.close();
  });
});
