import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterEach, describe, expect, it } from 'vitest';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { freePort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A gateway opening its JetStream logs while the server does not answer for a while (a cluster
 * still electing its JetStream leader, a server stalled under load): a JetStream request that
 * times out, or finds JetStream temporarily unavailable, is tried again until
 * OPEN_RETRY_MS, instead of ending the gateway's start (the `npm run cluster` test saw a gateway
 * worker exit with "TimeoutError: timeout" from the notifications log's stream info). Reproduced
 * by stopping nats-server (SIGSTOP) for longer than the JetStream request timeout (5 s).
 */
let child: ChildProcess | undefined;
let nc: NatsConnection | undefined;
let dir: string | undefined;
afterEach(async () => {
  if (child?.pid) process.kill(child.pid, 'SIGCONT');
  await nc?.close().catch(() => undefined);
  child?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
  child = nc = dir = undefined;
});

describe('opening the JetStream log while the server does not answer', () => {
  it('waits for it instead of failing with the first timeout', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tw-js-busy-'));
    const port = await freePort();
    child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')], { stdio: 'ignore' });
    nc = await waitFor(() => connect({ servers: `127.0.0.1:${port}` }), { what: 'nats-server', timeout: 10_000, interval: 100 });
    process.kill(child.pid!, 'SIGSTOP');
    const opening = JetStreamEventLog.open(nc, {
      maxPerUser: 100,
      retentionMs: 3_600_000,
      stream: 'EXEC_BUSY',
      inboundStream: 'EXEC_BUSY_IN',
      dedupWindowMs: 60_000,
      replicas: 1,
    });
    const stalled = setTimeout(() => process.kill(child!.pid!, 'SIGCONT'), 7_000);
    try {
      const log = await opening;
      expect(log.ready).toBe(true);
      expect((await log.append('alice', { id: 'x1', order: 'o', sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: Date.now() } as never)).seq).toBe(1);
      await log.close();
    } finally {
      clearTimeout(stalled);
    }
  }, 60_000);
});
