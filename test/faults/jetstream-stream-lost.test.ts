import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

/**
 * The JetStream log loses its stream under a running gateway (a single nats-server restarted
 * without its store, a stream deleted by hand; docs/private-streams.md, "The log"): the next
 * execution of a user is numbered above the highest seq this log instance stored or saw for the
 * user, as the Redis log does, so a client already past the old numbers sees a hole, not new
 * events dropped as already seen. Before, the numbering started again at 1.
 */
let nats: (TestServer & { destroy(): Promise<void> }) | undefined;
let nc: NatsConnection | undefined;
beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await nats?.destroy();
});

let n = 0;
const ex = (): ExecutionPayload => ({ id: `lost-${++n}`, order: 'o', sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: Date.now() }) as ExecutionPayload;
const opts = { maxPerUser: 1000, retentionMs: 3_600_000, stream: 'EXEC_LOST', inboundStream: 'EXEC_LOST_IN', dedupWindowMs: 60_000, replicas: 1 };

describe('the JetStream execution log loses its stream', () => {
  it('numbers the next events above what this instance stored or saw, never from 1 again', async () => {
    const log = await JetStreamEventLog.open(nc!, opts);
    try {
      for (let i = 1; i <= 3; i++) expect((await log.append('alice', ex())).seq).toBe(i);
      const jsm = await jetstreamManager(nc!);
      await jsm.streams.delete('EXEC_LOST'); // the server lost it
      const again = await JetStreamEventLog.open(nc!, opts); // created again (another gateway starting)
      await again.close();
      expect(await log.head('alice')).toBe(0); // the stream holds nothing of alice
      const next = await log.append('alice', ex());
      expect(next).toEqual({ seq: 4, duplicate: false });
      expect((await log.append('alice', ex())).seq).toBe(5);
      expect((await log.read('alice', 0, 10)).map((e) => e.seq)).toEqual([4, 5]);
      // a user this instance knew nothing of starts at 1
      expect((await log.append('bob', ex())).seq).toBe(1);
    } finally {
      await log.close();
    }
  });
});
