import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { natsClient, testLog } from '../helpers/nats-client.js';

/**
 * The stale-copy cases of jetstream-stale-copy-read.test.ts, generalised: events 1..n stored in
 * order, with copies of earlier events stored late anywhere after their own (as a clustered
 * stream may store an append that timed out and was retried). Reading the log page by page from
 * any point, as the router's replays do, must give every event after it exactly once, in order;
 * the head is the newest event, and the next append follows it. (Two copies of the first event at
 * the end, `1,2,3,4,1,1`, once made a replay from 0 stop at 3; `1,2,3,1,2` made the head 2.)
 */
const nats = natsClient();
const exec = (n: number) => ({ id: `e${n}`, order: `o${n}`, sym: 'AAPL', side: 'buy' as const, qty: 1, p: 100, t: n });

describe('JetStream execution log: reads across stale copies stored late (property)', () => {
  it('every page-by-page read from any point gives each later event once, in order', async () => {
    const jsm = await jetstreamManager(nats.nc);
    const js = jetstream(nats.nc);
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 45 }),
        // stale copies: (which event, how many positions after its own)
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 40 })), { maxLength: 6 }),
        fc.integer({ min: 1, max: 40 }),
        // where replays start (besides 0), as fractions of n
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 3 }),
        async (n, stale, pageSize, starts) => {
          const stream = `PROP${round++}`;
          const user = `u${round}`;
          const log = await testLog(nats.nc, stream, { logPrefix: `prop${round}.log.`, inPrefix: `prop${round}.in.` } as never);
          try {
            // the stream's order: event k at position k, each stale copy inserted after its event
            const order: number[] = Array.from({ length: n }, (_, i) => i + 1);
            for (const [which, later] of stale) {
              const ev = (which % n) + 1;
              const at = Math.min(order.length, order.indexOf(ev) + later);
              order.splice(at + 1, 0, ev);
            }
            for (const ev of order) await js.publish(`prop${round}.log.${user}`, JSON.stringify({ seq: ev, d: exec(ev) }));
            expect(await log.head(user), `head, order ${order.join(',')}`).toBe(n);
            for (const since of new Set([0, n - 1, n, ...starts.map((f) => Math.floor(f * n))])) {
              const got: number[] = [];
              for (let after = since; ;) {
                const page = await log.read(user, after, pageSize);
                if (page.length === 0) break;
                got.push(...page.map((e) => e.seq));
                after = page.at(-1)!.seq;
              }
              expect(got, `since ${since}, pages of ${pageSize}, stream order ${order.join(',')}`).toEqual(
                Array.from({ length: n - since }, (_, i) => since + i + 1),
              );
            }
            expect(await log.append(user, exec(n + 1)), `append after ${order.join(',')}`).toEqual({ seq: n + 1, duplicate: false });
          } finally {
            await log.close();
            await jsm.streams.delete(stream).catch(() => undefined);
            await jsm.streams.delete(`${stream}_IN`).catch(() => undefined);
          }
        },
      ),
      {
        numRuns: 25,
        examples: [
          [
            4,
            [
              [0, 3],
              [0, 3],
            ],
            1,
            [],
          ],
          [
            4,
            [
              [0, 3],
              [1, 2],
            ],
            2,
            [0.5],
          ],
          [
            12,
            [
              [5, 6],
              [6, 6],
              [2, 9],
            ],
            5,
            [0.3, 0.6],
          ],
        ],
      },
    );
  }, 300_000);
  it('an instance counts its next append from the newest event across what others stored since its last', async () => {
    // An instance that appended counts its next append by walking forward from its own last
    // message over what other writers stored since (gateways take turns on the inbound queue), and
    // walks back from the last message when that is further. Other writers' events and stale
    // copies of earlier events are stored between its appends, in random rounds.
    const jsm = await jetstreamManager(nats.nc);
    const js = jetstream(nats.nc);
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        // per round: what others store before this instance's next append (true: an event, false: a stale copy)
        fc.array(fc.array(fc.tuple(fc.boolean(), fc.nat()), { maxLength: 30 }), { minLength: 1, maxLength: 4 }),
        async (rounds) => {
          const stream = `NEXT${round++}`;
          const user = `n${round}`;
          const subject = `next${round}.log.${user}`;
          const log = await testLog(nats.nc, stream, { logPrefix: `next${round}.log.`, inPrefix: `next${round}.in.` } as never);
          try {
            let newest = 0;
            const order: number[] = [];
            expect(await log.append(user, exec(++newest))).toEqual({ seq: newest, duplicate: false });
            order.push(newest);
            for (const others of rounds) {
              for (const [event, which] of others) {
                const seq = event ? ++newest : (which % newest) + 1;
                await js.publish(subject, JSON.stringify({ seq, d: exec(seq) }));
                order.push(seq);
              }
              expect(await log.append(user, exec(newest + 1)), `stream order ${order.join(',')}`).toEqual({ seq: newest + 1, duplicate: false });
              order.push(++newest);
            }
          } finally {
            await log.close();
            await jsm.streams.delete(stream).catch(() => undefined);
            await jsm.streams.delete(`${stream}_IN`).catch(() => undefined);
          }
        },
      ),
      { numRuns: 25 },
    );
  }, 300_000);
});
