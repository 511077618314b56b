import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamClient } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { natsClient, testLog } from '../helpers/nats-client.js';

/**
 * A long read of the JetStream execution log goes through a consumer, and nats-server places a
 * consumer on any replica of a clustered stream. After a SIGKILL a replica can lag the leader or
 * hold other messages than the leader at the same stream sequences (test/faults/inbound-cluster.test.ts
 * saw a replica with, at three stream sequences, a stale copy of an older execution, the
 * leader's previous message, and an execution under another per-user seq, and without one
 * execution; CI once read 1112 of 1113 stored executions there, and once 494 of 498).
 *
 * Which replica serves a consumer is the server's choice, so the replica is stood in for here
 * on one real nats-server: a second stream holds what the replica holds (the same stream
 * sequences, its own contents), and the log's consumers are created on it while every other
 * request (the leader's answers) goes to the log's stream. A replay must return what the leader
 * holds: every stored execution once, in per-user seq order.
 */
const USER = 'u1';
const COUNT = 60;
const nats = natsClient();

const exec = (n: number | string) => ({ id: `e${n}`, order: `o${n}`, sym: 'AAPL', side: 'buy' as const, qty: 1, p: 100, t: 1 });
/** one stream message: an execution of `user` (default USER) under a per-user seq */
interface Msg {
  user?: string;
  seq: number;
  d: ReturnType<typeof exec>;
}
/** the leader's messages as the log stores them: e1..eCOUNT under seqs 1..COUNT */
const stored = (): Msg[] => Array.from({ length: COUNT }, (_, i) => ({ seq: i + 1, d: exec(i + 1) }));

/**
 * A log whose stream (the leader) holds `leader`, and a stand-in for the replica serving its
 * consumers holding `replica`, both published in order (stream sequence i + 1 holds message i).
 */
async function setUp(stream: string, leader: Msg[], replica: Msg[]) {
  const problems: string[] = [];
  const log = await testLog(nats.nc, stream, {
    logPrefix: `${stream}.log.`,
    inPrefix: `${stream}.in.`,
    onError: (err) => problems.push((err as Error).message),
  });
  const jsm = await jetstreamManager(nats.nc);
  await jsm.streams.add({ name: `${stream}_REPLICA`, subjects: [`replica.${stream}.>`] });
  const js = jetstream(nats.nc);
  for (const m of leader) await js.publish(`${stream}.log.${m.user ?? USER}`, JSON.stringify({ seq: m.seq, d: m.d }));
  for (const m of replica) await js.publish(`replica.${stream}.log.${m.user ?? USER}`, JSON.stringify({ seq: m.seq, d: m.d }));
  const client = log.client as JetStreamClient;
  const get = client.consumers.get.bind(client.consumers) as (stream: string, opts: { filter_subjects: string; opt_start_seq: number }) => unknown;
  (client.consumers as { get: unknown }).get = (s: string, opts: { filter_subjects: string; opt_start_seq: number }) =>
    s === stream ? get(`${stream}_REPLICA`, { ...opts, filter_subjects: `replica.${opts.filter_subjects}` }) : get(s, opts);
  return { log, problems };
}

const ids = (events: { seq: number; d: { id: string } }[]) => events.map((e) => `${e.seq}:${e.d.id}`);
const expected = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `${from + i}:e${from + i}`);

describe('JetStream execution log: a long read served by a replica that differs from the leader', () => {
  it('returns what the leader holds when the replica holds other messages at the same stream sequences', async () => {
    // the replica's stream sequences 30 to 32: a stale copy of seq 20, the leader's 30th message,
    // the leader's 32nd execution under seq 31; the leader's execution e31 is not there at all
    const leader = stored();
    const { log, problems } = await setUp('DIVERGED', leader, [
      ...leader.slice(0, 29),
      { seq: 20, d: exec(20) },
      leader[29]!,
      { seq: 31, d: exec(32) },
      ...leader.slice(32),
    ]);
    expect(ids(await log.read(USER, 0, 100))).toEqual(expected(1, COUNT));
    expect(ids(await log.read(USER, 10, 40))).toEqual(expected(11, 50));
    // a short read walks the leader anyway
    expect(ids(await log.read(USER, 28, 5))).toEqual(expected(29, 33));
    expect(problems.length).toBeGreaterThan(0);
    await log.close();
  });

  it('returns every stored execution when the replica lags behind the leader', async () => {
    const leader = stored();
    const { log } = await setUp('LAGGING', leader, leader.slice(0, 40));
    expect(ids(await log.read(USER, 0, 100))).toEqual(expected(1, COUNT));
    expect(ids(await log.read(USER, 20, 35))).toEqual(expected(21, 55));
    await log.close();
  });

  it('returns the first stored copy of a seq when the replica lacks it and holds a later copy', async () => {
    // two writers stored seq 30 (nats-server #4320); the later copy, eX, is still there (its
    // writer removes it and appends it again). The replica holds another user's message where
    // the leader holds e30: read there, every message matches the leader at its stream sequence
    const leader = [...stored().slice(0, 30), { seq: 30, d: exec('X') }, ...stored().slice(30)];
    const replica = leader.map((m, i) => (i === 29 ? { user: 'other', seq: 1, d: exec('o1') } : m));
    const { log } = await setUp('LOSER', leader, replica);
    expect(ids(await log.read(USER, 0, 100))).toEqual(expected(1, COUNT));
    expect(ids(await log.read(USER, 25, 30))).toEqual(expected(26, 55));
    await log.close();
  });

  it('uses the consumer read as it is when the replica holds what the leader holds', async () => {
    const leader = [...stored().slice(0, 40), { user: 'other', seq: 1, d: exec('o1') }, ...stored().slice(40)];
    const { log, problems } = await setUp('CURRENT', leader, leader);
    expect(ids(await log.read(USER, 0, 100))).toEqual(expected(1, COUNT));
    expect(ids(await log.read(USER, 5, 50))).toEqual(expected(6, 55));
    expect(problems).toEqual([]);
    await log.close();
  });
});
