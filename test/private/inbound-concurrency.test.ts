import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { consumeInbound } from '../../src/executions/inbound-consumer.js';
import { natsClient, workQueue } from '../helpers/nats-client.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The inbound work queue holds several messages at once: each user's are stored in the order they
 * came, one after another, and other users' do not wait behind them. Before, a gateway handled
 * one message at a time, so one user's slow append (a contended user, an append waiting on a
 * timeout) held every other user's executions; and messages waiting in the client's queue were
 * not kept alive, so a slow batch outlived its ack wait and was delivered a second time.
 */
const nats = natsClient();

describe('inbound work queue: several messages held at once', () => {
  it("one user's slow append does not hold other users' messages; each user's stay in order, one at a time", async () => {
    await workQueue(nats.nc, 'CONC_IN', 'conc.in.');
    const jsm = await jetstreamManager(nats.nc);
    const js = jetstream(nats.nc);
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const stored = new Map<string, string[]>();
    const active = new Map<string, number>();
    let overlapped = false;
    const stop = consumeInbound<{ id: string }>({
      jsm,
      js,
      stream: 'CONC_IN',
      prefix: 'conc.in.',
      durable: 'conc-in',
      what: 'test message',
      handle: async (user, body) => {
        active.set(user, (active.get(user) ?? 0) + 1);
        if (active.get(user)! > 1) overlapped = true;
        try {
          if (body.id === 'a1') await slow;
          else await new Promise((r) => setTimeout(r, Math.random() * 3)); // appends of varying length
          stored.set(user, [...(stored.get(user) ?? []), body.id]);
        } finally {
          active.set(user, active.get(user)! - 1);
        }
      },
      log: { warn: () => undefined },
    });
    try {
      // alice first (her first append is slow), then bob and carol interleaved with more of alice's
      for (let n = 1; n <= 5; n++) {
        for (const u of ['alice', 'bob', 'carol']) await js.publish(`conc.in.${u}`, JSON.stringify({ id: `${u[0]}${n}` }), { msgID: `${u}-${n}` });
      }
      // bob's and carol's are stored while alice's first is still being stored
      await waitFor(() => stored.get('bob')?.length === 5 && stored.get('carol')?.length === 5, { what: "bob's and carol's messages", timeout: 10_000 });
      expect(stored.get('alice')).toBeUndefined();
      release();
      await waitFor(() => stored.get('alice')?.length === 5, { what: "alice's messages", timeout: 10_000 });
      for (const u of ['alice', 'bob', 'carol']) expect(stored.get(u)).toEqual([1, 2, 3, 4, 5].map((n) => `${u[0]}${n}`));
      expect(overlapped).toBe(false);
    } finally {
      stop();
    }
  });

  it('messages waiting behind a slow one are kept: each delivered once, none redelivered after the ack wait', async () => {
    await workQueue(nats.nc, 'HOLD_IN', 'hold.in.');
    const jsm = await jetstreamManager(nats.nc);
    const js = jetstream(nats.nc);
    const deliveries: { id: string; redelivered: boolean }[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const stop = consumeInbound<{ id: string }>({
      jsm,
      js,
      stream: 'HOLD_IN',
      prefix: 'hold.in.',
      durable: 'hold-in',
      what: 'test message',
      ackWaitMs: 1500,
      handle: async (_user, body, opts) => {
        deliveries.push({ id: body.id, redelivered: opts.redeliveredSince !== undefined });
        if (body.id === 'h1') await slow;
      },
      log: { warn: () => undefined },
    });
    try {
      for (let n = 1; n <= 10; n++) await js.publish('hold.in.dave', JSON.stringify({ id: `h${n}` }), { msgID: `h${n}` });
      await waitFor(() => deliveries.length > 0, { what: 'h1 delivered', timeout: 5000 });
      // two ack waits while h1 is stored and h2..h10 wait behind it (the condition under test, not a wait for it)
      await new Promise((r) => setTimeout(r, 3000));
      release();
      await waitFor(async () => (await jsm.streams.info('HOLD_IN')).state.messages === 0, { what: 'every message acknowledged', timeout: 10_000 });
      expect(deliveries).toEqual(Array.from({ length: 10 }, (_, i) => ({ id: `h${i + 1}`, redelivered: false })));
    } finally {
      stop();
    }
  }, 30_000);
});
