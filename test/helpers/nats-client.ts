import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
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
