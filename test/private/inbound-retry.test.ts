import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { consumeInbound } from '../../src/executions/inbound-consumer.js';
import { waitFor } from '../helpers/wait.js';
import { natsClient, workQueue } from '../helpers/nats-client.js';

/**
 * The inbound work queue (exec.in / notif.in) never gives up on a message it could not store: a
 * log that is unreachable for longer than 20 redeliveries (a leader election under load, a
 * Redis failover) used to make JetStream stop delivering it (max_deliver 20), and the execution
 * was lost although the order system had it acknowledged. A durable created with those old
 * settings is brought to the new ones.
 */
const nats = natsClient();
const warnings: string[] = [];
const log = { warn: (_o: object, msg: string) => warnings.push(msg) };

describe('inbound work queue: a failing store', () => {
  it('is retried past 20 deliveries until the message is stored, once', async () => {
    await workQueue(nats.nc, 'RETRY_IN', 'retry.in.');
    const jsm = await jetstreamManager(nats.nc);
    const attempts = new Map<string, number>();
    const stored: string[] = [];
    const since: (number | undefined)[] = [];
    const stop = consumeInbound<{ id: string }>({
      jsm,
      js: jetstream(nats.nc),
      stream: 'RETRY_IN',
      prefix: 'retry.in.',
      durable: 'retry-in',
      what: 'test message',
      retryDelayMs: 10,
      maxRetryDelayMs: 40,
      handle: async (_user, body, append) => {
        since.push(append.redeliveredSince);
        const n = (attempts.get(body.id) ?? 0) + 1;
        attempts.set(body.id, n);
        if (n <= 25) throw new Error('log unreachable'); // 25 failed deliveries
        stored.push(body.id);
      },
      log,
    });
    try {
      const published = Date.now();
      await jetstream(nats.nc).publish('retry.in.alice', JSON.stringify({ id: 'm1' }), { msgID: 'm1' });
      await waitFor(() => stored.length === 1, { what: 'the message stored after 25 failures', timeout: 20_000 }).catch((err: Error) => {
        throw new Error(`${err.message}: ${attempts.get('m1') ?? 0} deliveries`);
      });
      expect(stored).toEqual(['m1']);
      expect(attempts.get('m1')).toBe(26);
      // every redelivery tells the store since when the message may have been stored (the stream's time)
      expect(since[0]).toBeUndefined();
      expect(new Set(since.slice(1)).size).toBe(1);
      expect(Math.abs(since[1]! - published)).toBeLessThan(1000);
      const ci = await jsm.consumers.info('RETRY_IN', 'retry-in');
      expect(ci.config.max_deliver ?? -1).toBeLessThanOrEqual(0);
      await waitFor(async () => (await jsm.streams.info('RETRY_IN')).state.messages === 0, { what: 'the stored message acknowledged', timeout: 5000 });
    } finally {
      stop();
    }
  });

  it('brings a durable created with max_deliver 20 and a 30 s ack wait to the current settings', async () => {
    await workQueue(nats.nc, 'OLD_IN', 'old.in.');
    const jsm = await jetstreamManager(nats.nc);
    await jsm.consumers.add('OLD_IN', {
      durable_name: 'old-in',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(30_000),
      max_deliver: 20,
      filter_subject: 'old.in.>',
    });
    const stored: string[] = [];
    const stop = consumeInbound<{ id: string }>({
      jsm,
      js: jetstream(nats.nc),
      stream: 'OLD_IN',
      prefix: 'old.in.',
      durable: 'old-in',
      what: 'test message',
      handle: async (_user, body) => void stored.push(body.id),
      log,
    });
    try {
      await jetstream(nats.nc).publish('old.in.bob', JSON.stringify({ id: 'x1' }), { msgID: 'x1' });
      await waitFor(() => stored.length === 1, { what: 'the message stored', timeout: 10_000 });
      const ci = await jsm.consumers.info('OLD_IN', 'old-in');
      expect(ci.config.max_deliver ?? -1).toBeLessThanOrEqual(0);
      expect(ci.config.ack_wait).toBe(nanos(10_000));
    } finally {
      stop();
    }
  });
});

describe('inbound work queue: a slow store', () => {
  it('is not taken for a stalled consumer: the batch behind it is handled, once, with no restart', async () => {
    // A store that takes longer than the watchdog's interval (3 s; 300 ms here) (an append waiting on a timeout while a
    // node is down) while messages wait on the server used to look like a silent consumer: the
    // consume was started again, and what the old one had pulled meanwhile waited out the ack wait.
    await workQueue(nats.nc, 'SLOW_IN', 'slow.in.');
    const jsm = await jetstreamManager(nats.nc);
    const js = jetstream(nats.nc);
    const stored: string[] = [];
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const seen: string[] = [];
    const mine: string[] = [];
    const stop = consumeInbound<{ id: string }>({
      jsm,
      js,
      stream: 'SLOW_IN',
      prefix: 'slow.in.',
      durable: 'slow-in',
      what: 'test message',
      watchdogMs: 300,
      handle: async (_user, body) => {
        seen.push(body.id);
        if (body.id === 's1') await slow;
        stored.push(body.id);
      },
      log: { warn: (_o: object, msg: string) => mine.push(msg) },
    });
    try {
      // more than a pull's batch (64 before, 16 now), so that some wait on the server while the first is handled
      for (let n = 1; n <= 100; n++) await js.publish('slow.in.alice', JSON.stringify({ id: `s${n}` }), { msgID: `s${n}` });
      await waitFor(() => seen.includes('s1'), { what: 's1 delivered', timeout: 5000 });
      // five of the watchdog's checks while s1 is handled (the condition under test, not a wait for it)
      await new Promise((r) => setTimeout(r, 1500));
      release();
      await waitFor(() => stored.length >= 100, { what: 'all 100 stored', timeout: 15_000 });
      expect(mine.filter((w) => w.includes('stalled'))).toEqual([]);
      expect(stored).toEqual(Array.from({ length: 100 }, (_, i) => `s${i + 1}`));
    } finally {
      stop();
    }
  }, 30_000);
});
