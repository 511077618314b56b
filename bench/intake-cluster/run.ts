/**
 * How fast the inbound work queue (`exec.in.<user>` → the execution log) drains on a three-node
 * nats-server cluster (replicas 3), as gateways run it: each gateway its own connection, log and
 * inbound consumer (src/executions/inbound-consumer.ts), sharing the durable consumer.
 *
 *   node --import tsx bench/intake-cluster/run.ts [--orders 600] [--gateways 1,2] [--users 1,8]
 *
 * For each (gateways, users): a fresh cluster, `--orders` messages published at once (spread
 * over the users), then the time until every one is in the log. Prints orders per second, with
 * the machine load before and after each run. docs/operations.md ("Sizing the intake") reads it.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { NatsCluster } from '../../test/helpers/ha-servers.js';
import { startIntakeGateway } from '../../test/helpers/intake-gateway.js';
import { waitFor } from '../../test/helpers/wait.js';

const { values } = parseArgs({
  options: { orders: { type: 'string', default: '600' }, gateways: { type: 'string', default: '1,2' }, users: { type: 'string', default: '1,8' } },
});
const orders = Number(values.orders);
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

async function run(gateways: number, users: number): Promise<void> {
  const cluster = await NatsCluster.start(3);
  const urls = cluster.nodes.map((x) => x.url);
  const conns: NatsConnection[] = [];
  const stops: (() => void)[] = [];
  const logs: JetStreamEventLog<{ id: string }>[] = [];
  let handled = 0;
  try {
    for (let g = 0; g < gateways; g++) {
      const nc = await connect({ servers: [...urls.slice(g % 3), ...urls.slice(0, g % 3)], noRandomize: true });
      conns.push(nc);
      const { log, stop } = await startIntakeGateway<{ id: string }>(nc, {
        warn: (_o, msg) => console.log(`  warn: ${msg}`),
        handle: (log) => async (user, body, opts) => {
          await log.append(user, body, opts);
          handled++;
        },
      });
      logs.push(log);
      stops.push(stop);
    }
    await cluster.waitStreamHealthy('TW_EXEC_IN', 3);
    const js = jetstream(conns[0]!);
    const loadBefore = load();
    const t0 = performance.now();
    await Promise.all(Array.from({ length: orders }, (_, i) => js.publish(`exec.in.u${i % users}`, JSON.stringify({ id: `o-${i}` }), { msgID: `o-${i}` })));
    const published = performance.now() - t0;
    await waitFor(() => handled >= orders, { what: 'every order in the log', timeout: 600_000, interval: 20 });
    const ms = performance.now() - t0;
    console.log(
      `${gateways} gateway(s), ${users} user(s): ${orders} orders (published in ${published.toFixed(0)} ms) in the log after ${ms.toFixed(0)} ms = ${Math.round((orders / ms) * 1000)}/s; load ${loadBefore} → ${load()}`,
    );
  } finally {
    for (const s of stops) s();
    for (const l of logs) await l.close();
    for (const c of conns) await c.close().catch(() => undefined);
    await cluster.destroy();
  }
}

for (const g of values.gateways.split(',').map(Number)) for (const u of values.users.split(',').map(Number)) await run(g, u);
