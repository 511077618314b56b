import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import type { JetStreamEventLogOptions } from '../../src/executions/jetstream-event-log.js';
import { startNats } from './servers.js';

/**
 * One nats-server (JetStream on) for the test file and a client connection to it: started before
 * the file's tests, closed and stopped after them. Call it at the top level of the file.
 */
export function natsClient(): { readonly nc: NatsConnection } {
  let server: Awaited<ReturnType<typeof startNats>> | undefined;
  let conn: NatsConnection | undefined;
  beforeAll(async () => {
    server = await startNats();
    conn = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await conn?.close();
    await server?.destroy();
  });
  return {
    get nc(): NatsConnection {
      if (!conn) throw new Error('natsClient: the connection is opened in beforeAll');
      return conn;
    },
  };
}

/**
 * A JetStream execution log on a single-node stream for tests: `stream` with its inbound queue
 * `<stream>_IN`, a minute's duplicate window, an hour's retention, 1000 events per user; `opts`
 * override any of these (subject prefixes, when two logs share a server).
 */
export function testLog(nc: NatsConnection, stream: string, opts: Partial<JetStreamEventLogOptions> = {}): Promise<JetStreamEventLog> {
  return JetStreamEventLog.open(nc, {
    stream,
    inboundStream: `${stream}_IN`,
    dedupWindowMs: 60_000,
    retentionMs: 3_600_000,
    maxPerUser: 1000,
    replicas: 1,
    ...opts,
  });
}

/** A work-queue stream `name` over `<prefix>>` in memory, as an inbound queue (exec.in, notif.in) for consumeInbound tests. */
export async function workQueue(nc: NatsConnection, name: string, prefix: string): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [prefix + '>'], retention: RetentionPolicy.Workqueue, storage: StorageType.Memory });
}
