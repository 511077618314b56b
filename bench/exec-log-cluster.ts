import { loadavg } from 'node:os';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamEventLog } from '../src/executions/jetstream-event-log.js';
import { NatsCluster } from '../test/helpers/ha-servers.js';

/** The stream the execution-log benches use (the engine's default name). */
export const BENCH_STREAM = 'TW_EXEC';

/** The machine's load averages (1, 5, 15 min), for the lines a bench prints. */
export const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

/**
 * A three-node nats-server cluster on loopback, a connection to all of it and an R3 execution
 * log on it (bench/exec-log-read, bench/exec-follow); `close` ends all three.
 */
export async function clusterLog(): Promise<{ cluster: NatsCluster; nc: NatsConnection; log: JetStreamEventLog; close(): Promise<void> }> {
  const cluster = await NatsCluster.start(3);
  const nc = await connect({ servers: cluster.nodes.map((n) => n.url) });
  const log = await JetStreamEventLog.open(nc, {
    stream: BENCH_STREAM,
    inboundStream: 'TW_EXEC_IN',
    dedupWindowMs: 60_000,
    retentionMs: 3_600_000,
    maxPerUser: 1_000_000,
    replicas: 3,
  });
  await cluster.waitStreamHealthy(BENCH_STREAM, 3);
  return {
    cluster,
    nc,
    log,
    async close() {
      await log.close();
      await nc.close();
      await cluster.destroy();
    },
  };
}
