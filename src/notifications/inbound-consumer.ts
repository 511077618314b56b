import { AckPolicy, DeliverPolicy, JetStreamApiError } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { decodeBusMessage } from '../codec/tick-codec.js';
import { identityProblem } from '../core/identity.js';
import { userOf } from '../bus/private-subjects.js';
import { EventRequestError } from '../executions/execution-service.js';
import type { NotificationService } from './notification-service.js';
import { NOTIF_IN_PREFIX } from './notification-channel.js';

export const NOTIF_INBOUND_DURABLE = 'tickwire-notif-in';

export interface NotificationInboundOptions {
  jsm: JetStreamManager;
  js: JetStreamClient;
  stream: string;
  notifications: NotificationService;
  log: { warn(obj: object, msg: string): void };
}

const decoder = new TextDecoder();
function decodeBody(data: Uint8Array): unknown {
  // JSON (documented); MessagePack accepted for producers already speaking it
  if (data.length > 0 && (data[0] === 0x7b || data[0] === 0x20 || data[0] === 0x0a)) return JSON.parse(decoder.decode(data));
  return decodeBusMessage(data);
}

/**
 * Notifications published by other services on `notif.in.<user>` (JetStream work-queue stream):
 * a durable pull consumer shared by the gateways validates them exactly like the service API
 * (same schema, same dedup by id), appends them to the user's log and acks. Invalid messages are
 * terminated (logged, never redelivered); a failed append is redelivered.
 */
export function consumeNotificationInbound(opts: NotificationInboundOptions): () => void {
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        try {
          await opts.jsm.consumers.info(opts.stream, NOTIF_INBOUND_DURABLE);
        } catch (err) {
          if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
          await opts.jsm.consumers.add(opts.stream, {
            durable_name: NOTIF_INBOUND_DURABLE,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            ack_wait: nanos(30_000),
            max_deliver: 20,
            filter_subject: NOTIF_IN_PREFIX + '>',
          });
        }
        const consumer = await opts.js.consumers.get(opts.stream, NOTIF_INBOUND_DURABLE);
        if (stopped) return;
        // short pulls with a heartbeat every second, as for executions (inbound-consumer.ts)
        messages = await consumer.consume({ max_messages: 64, expires: 5000, idle_heartbeat: 1000 });
        for await (const m of messages) {
          const subjectUser = userOf(m.subject, NOTIF_IN_PREFIX);
          const user = subjectUser !== undefined && identityProblem(subjectUser) === undefined ? subjectUser : undefined;
          let body: unknown;
          try {
            body = decodeBody(m.data);
          } catch {
            body = undefined;
          }
          if (user === undefined || body === undefined) {
            const why =
              subjectUser === undefined
                ? 'subject must be notif.in.<user>, the user escaped as in docs/private-streams.md'
                : user === undefined
                  ? `user in the subject ${identityProblem(subjectUser)}`
                  : 'body is not JSON';
            opts.log.warn({ subject: m.subject, reason: why }, 'inbound notification refused');
            m.term();
            continue;
          }
          try {
            await opts.notifications.post(user, body);
            m.ack();
          } catch (err) {
            if (err instanceof EventRequestError && err.status < 500) {
              opts.log.warn({ subject: m.subject, reason: err.message }, 'inbound notification refused');
              m.term();
            } else {
              m.nak(1000);
            }
          }
        }
      } catch (err) {
        if (stopped) return;
        opts.log.warn({ err }, 'inbound notifications consumer failed; retrying');
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 250));
    }
  };
  void run();
  return () => {
    stopped = true;
    messages?.stop();
  };
}
