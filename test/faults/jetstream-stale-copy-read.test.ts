import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { natsClient, testLog } from '../helpers/nats-client.js';

/**
 * After a SIGKILL a clustered stream can store late a stale copy of an execution, with a per-user
 * seq below the newest (nats-server 2.9 in test/faults/inbound-cluster.test.ts; the log skips
 * it). A read finds its start by binary search over stream sequences, where per-user seqs grow
 * with the stream sequence, except at such a copy: a probe landing on it must not make the read
 * start past events stored before it. The stream's state is written directly on one node.
 */
const USER = 'u1';
const nats = natsClient();

const exec = (n: number) => ({ id: `e${n}`, order: `o${n}`, sym: 'AAPL', side: 'buy' as const, qty: 1, p: 100, t: n });
const expected = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}:e${from + i}`);

/** A log on a single-node stream, and a way to write its messages directly (as a cluster may have stored them). */
async function staleLog(stream: string) {
  const log = await testLog(nats.nc, stream);
  const js = jetstream(nats.nc);
  return { log, publish: (seq: number, n: number) => js.publish(`exec.log.${USER}`, JSON.stringify({ seq, d: exec(n) })) };
}

describe('JetStream execution log: a read across a stale copy stored late', () => {
  it('starts at the first event after `since`, not past it, wherever the copy is', async () => {
    const { log, publish } = await staleLog('STALE');
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

  it('reads to the newest event and knows the head when the stale copy is the newest message on the stream', async () => {
    // the case above's streams hold the same subjects
    const jsm = await jetstreamManager(nats.nc);
    for (const name of ['STALE', 'STALE_IN']) await jsm.streams.delete(name).catch(() => undefined);
    const { log, publish } = await staleLog('STALE_LAST');
    // stream sequences 1-40: seqs 1-40; 41: a stale copy of seq 39, stored after the newest event
    for (let n = 1; n <= 40; n++) await publish(n, n);
    await publish(39, 39);
    const ids = async (after: number, limit: number) => (await log.read(USER, after, limit)).map((e) => `${e.seq}:${e.d.id}`);
    expect(await log.head(USER)).toBe(40);
    expect(await ids(0, 100), 'a long read').toEqual(expected(1, 40));
    expect(await ids(35, 100), 'a short read').toEqual(expected(36, 40));
    expect(await ids(39, 5), 'the newest event alone').toEqual(expected(40, 40));
    // the router's pages: 200 at a time in the gateway, here 20
    const pages: string[] = [];
    for (let after = 0; ;) {
      const page = await log.read(USER, after, 20);
      if (page.length === 0) break;
      pages.push(...page.map((e) => `${e.seq}:${e.d.id}`));
      after = page.at(-1)!.seq;
    }
    expect(pages).toEqual(expected(1, 40));
    expect(await log.append(USER, exec(41))).toEqual({ seq: 41, duplicate: false });
    await log.close();
  });
});
