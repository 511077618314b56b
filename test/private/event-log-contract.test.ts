import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventLog, StoredEvent } from '../../src/executions/event-log.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { RedisEventLog } from '../../src/executions/redis-event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type Server = TestServer & { destroy(): Promise<void> };

function ex(id: string, qty = 1): ExecutionPayload {
  return { id, order: `o-${id}`, sym: 'AAPL', side: 'buy', qty, p: 100, t: 1_700_000_000_000 };
}

interface Impl {
  name: string;
  make(retention: { maxPerUser: number; retentionMs: number }, ns: string): Promise<EventLog>;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
}

let redis: Server | undefined;
let nats: Server | undefined;
let nc: NatsConnection | undefined;
let streamNo = 0;

const impls: Impl[] = [
  { name: 'memory', make: async (r) => new MemoryEventLog(r) },
  {
    name: 'redis',
    setup: async () => {
      redis = await startRedis();
    },
    teardown: async () => redis?.destroy(),
    make: async (r, ns) => new RedisEventLog({ ...r, url: redis!.url, keyPrefix: `test:${ns}:` }),
  },
  {
    name: 'jetstream',
    setup: async () => {
      nats = await startNats();
      nc = await connect({ servers: nats.url });
    },
    teardown: async () => {
      await nc?.close();
      await nats?.destroy();
    },
    make: async (r) => {
      streamNo++;
      // one stream pair per test: the subjects overlap, so earlier ones are removed first
      const jsm = await (await import('@nats-io/jetstream')).jetstreamManager(nc!);
      for await (const s of jsm.streams.list()) await jsm.streams.delete(s.config.name);
      return JetStreamEventLog.open(nc!, { ...r, stream: `EXEC_${streamNo}`, inboundStream: `EXEC_IN_${streamNo}`, dedupWindowMs: 60_000, replicas: 1 });
    },
  },
];

const RET = { maxPerUser: 1000, retentionMs: 3_600_000 };

for (const impl of impls) {
  describe(`EventLog contract: ${impl.name}`, () => {
    let nsNo = 0;
    const open = (r = RET) => impl.make(r, `${impl.name}-${++nsNo}-${Date.now()}`);
    beforeAll(async () => impl.setup?.());
    afterAll(async () => impl.teardown?.());

    it('numbers events per user from 1, without holes', async () => {
      const log = await open();
      expect(await log.head('u1')).toBe(0);
      expect((await log.append('u1', ex('a'))).seq).toBe(1);
      expect((await log.append('u1', ex('b'))).seq).toBe(2);
      expect((await log.append('u2', ex('a'))).seq).toBe(1);
      expect((await log.append('u1', ex('c'))).seq).toBe(3);
      expect(await log.head('u1')).toBe(3);
      expect(await log.head('u2')).toBe(1);
      // the cheap look (where a log has one) tells the same on a single server without stale copies
      const hint = (u: string): Promise<number> => (log.headHint ? log.headHint(u) : log.head(u));
      expect([await hint('u1'), await hint('u2'), await hint('nobody')]).toEqual([3, 1, 0]);
      await log.close();
    });

    it('stores a repeated id once and reports the original seq', async () => {
      const log = await open();
      await log.append('u', ex('x'));
      await log.append('u', ex('y'));
      expect(await log.append('u', ex('x', 99))).toEqual({ seq: 1, duplicate: true });
      // ids are per user
      expect(await log.append('v', ex('x'))).toEqual({ seq: 1, duplicate: false });
      expect((await log.read('u', 0, 10)).map((e) => [e.seq, e.d.id, e.d.qty])).toEqual([
        [1, 'x', 1],
        [2, 'y', 1],
      ]);
      await log.close();
    });

    it('reads after a sequence, in pages, and tails', async () => {
      const log = await open();
      for (let i = 1; i <= 12; i++) await log.append('u', ex(`e${i}`));
      await log.append('other', ex('zz'));
      expect((await log.read('u', 0, 5)).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      expect((await log.read('u', 7, 100)).map((e) => e.seq)).toEqual([8, 9, 10, 11, 12]);
      expect(await log.read('u', 12, 10)).toEqual([]);
      expect(await log.read('nobody', 0, 10)).toEqual([]);
      expect((await log.tail('u', 3)).map((e) => e.seq)).toEqual([10, 11, 12]);
      expect((await log.read('u', 10, 1))[0]!.d).toEqual(ex('e11'));
      await log.close();
    });

    it('reads long ranges completely and in order', async () => {
      const log = await open();
      for (let i = 1; i <= 150; i++) {
        await log.append('long', ex(`l${i}`));
        if (i % 10 === 0) await log.append('noise', ex(`n${i}`));
      }
      const all = await log.read('long', 0, 1000);
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
      expect(all[149]!.d.id).toBe('l150');
      expect((await log.read('long', 60, 70)).map((e) => e.seq)).toEqual(Array.from({ length: 70 }, (_, i) => 61 + i));
      expect((await log.tail('long', 40)).map((e) => e.seq)).toEqual(Array.from({ length: 40 }, (_, i) => 111 + i));
      await log.close();
    });

    it('keeps a user id with dots, stars and spaces apart from others', async () => {
      const log = await open();
      await log.append('a.b', ex('1'));
      await log.append('a', ex('2'));
      await log.append('a*', ex('3'));
      await log.append('a b', ex('4'));
      expect((await log.read('a.b', 0, 10)).map((e) => e.d.id)).toEqual(['1']);
      expect((await log.read('a', 0, 10)).map((e) => e.d.id)).toEqual(['2']);
      expect((await log.read('a*', 0, 10)).map((e) => e.d.id)).toEqual(['3']);
      expect((await log.read('a b', 0, 10)).map((e) => e.d.id)).toEqual(['4']);
      await log.close();
    });

    it('keeps at most maxPerUser events, the newest', async () => {
      const log = await open({ maxPerUser: 5, retentionMs: 3_600_000 });
      for (let i = 1; i <= 9; i++) await log.append('u', ex(`e${i}`));
      expect((await log.read('u', 0, 100)).map((e) => e.seq)).toEqual([5, 6, 7, 8, 9]);
      expect(await log.head('u')).toBe(9);
      expect((await log.append('u', ex('e10'))).seq).toBe(10);
      await log.close();
    });

    it('tells followers about every appended event in per-user order', async () => {
      const log = await open();
      const seen: [string, StoredEvent][] = [];
      const stop = log.follow((user, ev) => seen.push([user, ev]));
      // a JetStream consumer is created asynchronously: probe events of another user until one is heard
      let probes = 0;
      await waitFor(
        async () => {
          await log.append('probe', ex(`p${++probes}`));
          return seen.some(([u]) => u === 'probe');
        },
        { what: 'the follower to hear a probe event', interval: 50 },
      );
      for (let i = 1; i <= 5; i++) await log.append(i % 2 ? 'odd' : 'even', ex(`f${i}`));
      await log.append('odd', ex('f1')); // duplicate: not announced
      await log.append('even', ex('f6')); // a sentinel: the duplicate would be announced before it
      await waitFor(() => seen.some(([, e]) => e.d.id === 'f6'), 'the sentinel event');
      expect(seen.filter(([u]) => u !== 'probe').map(([u, e]) => `${u}:${e.seq}:${e.d.id}`)).toEqual([
        'odd:1:f1',
        'even:1:f2',
        'odd:2:f3',
        'even:2:f4',
        'odd:3:f5',
        'even:3:f6',
      ]);
      stop();
      await log.close();
    });

    it('keeps sequences contiguous under concurrent appends', async () => {
      const log = await open();
      const results = await Promise.all(Array.from({ length: 25 }, (_, i) => log.append('busy', ex(`c${i}`))));
      expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      const stored = await log.read('busy', 0, 100);
      expect(stored.map((e) => e.seq)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      expect(new Set(stored.map((e) => e.d.id)).size).toBe(25);
      await log.close();
    });
  });
}
