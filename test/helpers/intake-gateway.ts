import type { NatsConnection } from '@nats-io/transport-node';
import { consumeInbound, INBOUND_DURABLE } from '../../src/executions/inbound-consumer.js';
import type { InboundConsumerOptions } from '../../src/executions/inbound-consumer.js';
import type { LogPayload } from '../../src/executions/event-log.js';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import type { JetStreamEventLogOptions } from '../../src/executions/jetstream-event-log.js';

/**
 * One gateway's execution intake on the three-node test cluster (test/helpers/ha-servers.ts), as
 * the engine runs it in NATS mode: its own execution log (`TW_EXEC`, replicas 3) and the inbound
 * consumer of `exec.in.<user>` (`TW_EXEC_IN`) that every gateway shares. `handle` is given the log
 * and stores each message (the engine appends it; a test may time or count around the append).
 * Used by test/faults/inbound-cluster.test.ts and bench/intake-cluster.
 */
export async function startIntakeGateway<P extends LogPayload>(
  nc: NatsConnection,
  opts: {
    handle: (log: JetStreamEventLog<P>) => InboundConsumerOptions<P>['handle'];
    warn: (obj: object, msg: string) => void;
    onError?: JetStreamEventLogOptions['onError'];
  },
): Promise<{ log: JetStreamEventLog<P>; stop: () => void }> {
  const log = await JetStreamEventLog.open<P>(nc, {
    stream: 'TW_EXEC',
    inboundStream: 'TW_EXEC_IN',
    dedupWindowMs: 120_000,
    retentionMs: 3_600_000,
    maxPerUser: 100_000,
    replicas: 3,
    ...(opts.onError ? { onError: opts.onError } : {}),
  });
  const stop = consumeInbound<P>({
    jsm: log.manager,
    js: log.client,
    stream: 'TW_EXEC_IN',
    prefix: 'exec.in.',
    durable: INBOUND_DURABLE,
    what: 'execution',
    handle: opts.handle(log),
    log: { warn: opts.warn },
  });
  return { log, stop };
}
