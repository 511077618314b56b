import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { natsClient, testLog } from '../helpers/nats-client.js';

/**
 * An execution delivered twice (the intake's ack was lost in a node kill, so the inbound queue
 * redelivers it) is appended twice: JetStream's message-id deduplication answers the second
 * publish as a duplicate, and the log then reads the original to tell a stored execution from a
 * copy it removed after a collision. A failed read there (a timeout while a node is down) is not
 * "the copy is gone": the append must fail, to be retried, and never store the execution again
 * under a new message id (CI's inbound-cluster run once held `in-103` twice, at seqs 102 and 527).
 */
const USER = 'u1';
const nats = natsClient();

const exec = (n: number) => ({ id: `e${n}`, order: `o${n}`, sym: 'AAPL', side: 'buy' as const, qty: 1, p: 100, t: n });

/** The test's connection, whose next `failGets` reads of a message by stream sequence time out. */
function flakyGets(): { nc: NatsConnection; failNext(n: number): void } {
  let failGets = 0;
  const target = nats.nc;
  const nc = new Proxy(target, {
    get(t, p) {
      if (p === 'request') {
        return async (subject: string, data?: Uint8Array | string, opts?: unknown) => {
          const query = typeof data === 'string' ? data : data ? new TextDecoder().decode(data) : '';
          if (failGets > 0 && subject.startsWith('$JS.API.STREAM.MSG.GET.') && /^\{"seq":\d+\}$/.test(query)) {
            failGets--;
            throw new Error('TIMEOUT (injected: the stream leader did not answer)');
          }
          return t.request(subject, data, opts as never);
        };
      }
      const v = Reflect.get(t, p, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  return { nc, failNext: (n) => (failGets = n) };
}

describe('JetStream execution log: an error while appending', () => {
  it('a failed read of the duplicate’s original fails the append instead of storing the execution again', async () => {
    const flaky = flakyGets();
    const log = await testLog(flaky.nc, 'APPEND_ERR');
    expect(await log.append(USER, exec(1))).toEqual({ seq: 1, duplicate: false });
    expect(await log.append(USER, exec(2))).toEqual({ seq: 2, duplicate: false });
    // e1 again (redelivered), and the read of its original times out
    flaky.failNext(1);
    await expect(log.append(USER, exec(1))).rejects.toThrow(/TIMEOUT/);
    // the retry: the original is read, and the execution is reported as stored before
    expect(await log.append(USER, exec(1))).toEqual({ seq: 1, duplicate: true });
    expect((await log.read(USER, 0, 10)).map((e) => `${e.seq}:${e.d.id}`)).toEqual(['1:e1', '2:e2']);
    expect(await log.append(USER, exec(3))).toEqual({ seq: 3, duplicate: false });
    await log.close();
  });

  it('a redelivered execution is found in the log even when JetStream no longer deduplicates its id', async () => {
    // JetStream's duplicate window is the only deduplication of a plain append: past it (here 200
    // ms; in a cluster, also a node whose deduplication state missed messages it caught up on)
    // the same message id is stored again. A redelivery says since when it may have been stored.
    // (the first case's streams hold the default subjects)
    const log = await testLog(nats.nc, 'REDELIVERED', { logPrefix: 'rd.log.', inPrefix: 'rd.in.', dedupWindowMs: 200 });
    const since = Date.now();
    for (let n = 1; n <= 30; n++) expect(await log.append('other', exec(n))).toEqual({ seq: n, duplicate: false });
    expect(await log.append(USER, exec(7))).toEqual({ seq: 1, duplicate: false });
    expect(await log.append(USER, exec(8))).toEqual({ seq: 2, duplicate: false });
    await new Promise((r) => setTimeout(r, 400)); // past the duplicate window (the condition under test, not a wait for it)
    expect(await log.append(USER, exec(7), { redeliveredSince: since })).toEqual({ seq: 1, duplicate: true });
    expect(await log.append('other', exec(8), { redeliveredSince: since })).toEqual({ seq: 8, duplicate: true });
    // an id not in the log is appended as usual
    expect(await log.append(USER, exec(9), { redeliveredSince: since })).toEqual({ seq: 3, duplicate: false });
    expect((await log.read(USER, 0, 10)).map((e) => `${e.seq}:${e.d.id}`)).toEqual(['1:e7', '2:e8', '3:e9']);
    await log.close();
  });
  it('a redelivery of a user with many events since is looked up in bulk, found or not', async () => {
    // One request per event made a redelivery cost seconds under load, and the inbound queue's
    // other messages outlived their ack wait behind it (test/faults/inbound-cluster.test.ts): past
    // the first 32 the look-up reads through a consumer checked against the leader.
    const log = await testLog(nats.nc, 'REDELIVERED_MANY', { logPrefix: 'rm.log.', inPrefix: 'rm.in.', dedupWindowMs: 200 });
    const since = Date.now();
    const N = 400;
    for (let n = 1; n <= N; n++) expect(await log.append(USER, exec(n))).toEqual({ seq: n, duplicate: false });
    await new Promise((r) => setTimeout(r, 400)); // past the duplicate window (the condition under test, not a wait for it)
    const started = Date.now();
    // within the first 32, past them, the last one
    for (const n of [5, 33, 34, 250, N]) expect(await log.append(USER, exec(n), { redeliveredSince: since }), `e${n}`).toEqual({ seq: n, duplicate: true });
    // not in the log: looked for among all N, then appended
    expect(await log.append(USER, exec(N + 1), { redeliveredSince: since })).toEqual({ seq: N + 1, duplicate: false });
    console.log(`[append-errors] six redelivery look-ups over ${N} events: ${Date.now() - started} ms`);
    const stored = await log.read(USER, 0, N + 10);
    expect(stored.map((e) => e.d.id)).toEqual(Array.from({ length: N + 1 }, (_, i) => `e${i + 1}`));
    await log.close();
  });

  it('redeliveries of one user one after another read only what was stored since the look-up before', async () => {
    // After a node was killed, redeliveries come by the dozen for the same user; each searched the
    // stream and read the user's events since its first delivery again (CI: 806 redeliveries at
    // ~360 ms each, and the intake fell further behind). Counted in messages the connection sent.
    const log = await testLog(nats.nc, 'REDELIVERED_RUN', { logPrefix: 'rr.log.', inPrefix: 'rr.in.', dedupWindowMs: 200 });
    const since = Date.now();
    const N = 300;
    for (let n = 1; n <= N; n++) await log.append(USER, exec(n));
    await new Promise((r) => setTimeout(r, 400)); // past the duplicate window (the condition under test, not a wait for it)
    // the first look-up reads the user's events since; so did each one before
    expect(await log.append(USER, exec(7), { redeliveredSince: since })).toEqual({ seq: 7, duplicate: true });
    const before = nats.nc.stats().outMsgs;
    // more redeliveries, found or not, with new events stored between them (by this writer and another)
    const other = await testLog(nats.nc, 'REDELIVERED_RUN', { logPrefix: 'rr.log.', inPrefix: 'rr.in.', dedupWindowMs: 200 });
    const lookups = [12, 150, 299, 1, 200, 301, 88, 302, 250, 303];
    let next = N + 1;
    for (const n of lookups) {
      if (n > N) {
        // not stored yet: looked up, then appended as new
        expect(await log.append(USER, exec(n), { redeliveredSince: since })).toEqual({ seq: next++, duplicate: false });
      } else {
        expect(await log.append(USER, exec(n), { redeliveredSince: since }), `e${n}`).toEqual({ seq: n, duplicate: true });
      }
      // the other writer stores one in between
      expect(await other.append(USER, exec(1000 + n))).toEqual({ seq: next++, duplicate: false });
    }
    const perLookup = (nats.nc.stats().outMsgs - before) / lookups.length;
    console.log(
      `[append-errors] ${lookups.length} more redelivery look-ups over ${N} events: ${perLookup.toFixed(1)} messages sent each (the other writer's appends included)`,
    );
    // each: the user's messages since the look-up before (one or two), the hit read again from the
    // leader, and for a new one its append; the other writer's append about 4. Reading the user's
    // events since the first delivery again cost over 300 each
    expect(perLookup).toBeLessThanOrEqual(20);
    const stored = await log.read(USER, 0, 1000);
    expect(new Set(stored.map((e) => e.d.id)).size).toBe(stored.length);
    expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: stored.length }, (_, i) => i + 1));
    await other.close();
    await log.close();
  });
});
