import { AckPolicy, DeliverPolicy, JetStreamApiError } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { decodeBusMessage } from '../codec/tick-codec.js';
import { identityProblem } from '../core/identity.js';
import type { ExecutionService } from './execution-service.js';
import { EventRequestError } from './execution-service.js';
import { describeIssue, ExecutionSchema, UserIdSchema } from './schemas.js';
import { EXEC_IN_PREFIX, userOf } from '../bus/private-subjects.js';

export const INBOUND_DURABLE = 'tickwire-exec-in';
const INBOUND_HEARTBEAT_MS = 1000;
const INBOUND_PULL_EXPIRES_MS = 5000;

export interface InboundOptions {
  jsm: JetStreamManager;
  js: JetStreamClient;
  stream: string;
  executions: ExecutionService;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
}

const InboundSchema = ExecutionSchema.extend({ user: UserIdSchema.optional() }).strict();
const decoder = new TextDecoder();

function decodeBody(data: Uint8Array): unknown {
  // JSON (the documented format); MessagePack accepted for producers already speaking it
  if (data.length > 0 && (data[0] === 0x7b || data[0] === 0x20 || data[0] === 0x0a)) return JSON.parse(decoder.decode(data));
  return decodeBusMessage(data);
}

/**
 * Executions published by order systems on `exec.in.<user>` (JetStream work-queue stream): a
 * durable pull consumer shared by the gateways appends them to the execution log and acks.
 * Invalid messages are terminated (logged, never redelivered); a failed append is redelivered.
 */
export function consumeInbound(opts: InboundOptions): () => void {
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        try {
          await opts.jsm.consumers.info(opts.stream, INBOUND_DURABLE);
        } catch (err) {
          if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
          await opts.jsm.consumers.add(opts.stream, {
            durable_name: INBOUND_DURABLE,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            ack_wait: nanos(30_000),
            max_deliver: 20,
            filter_subject: EXEC_IN_PREFIX + '>',
          });
        }
        const consumer = await opts.js.consumers.get(opts.stream, INBOUND_DURABLE);
        if (stopped) return;
        // a durable, replicated consumer: the client re-issues its pulls after missed heartbeats and
        // the server moves the consumer to a live node; unacked messages are redelivered. The
        // client's defaults (30 s pulls, heartbeats every 15 s) left intake stalled for over 30 s
        // after a node died (test/faults/nats-cluster.test.ts); pulls of 5 s with a heartbeat
        // every second notice a dead node within about 2 s.
        messages = await consumer.consume({ max_messages: 64, expires: INBOUND_PULL_EXPIRES_MS, idle_heartbeat: INBOUND_HEARTBEAT_MS });
        for await (const m of messages) {
          const subjectUser = userOf(m.subject, EXEC_IN_PREFIX);
          // the id in the subject follows the same rules as one in a token or the service API
          const user = subjectUser !== undefined && identityProblem(subjectUser) === undefined ? subjectUser : undefined;
          let parsed;
          try {
            parsed = InboundSchema.safeParse(decodeBody(m.data));
          } catch {
            parsed = undefined;
          }
          if (user === undefined || !parsed || !parsed.success) {
            const why =
              subjectUser === undefined
                ? 'subject must be exec.in.<user>, the user escaped as in docs/private-streams.md'
                : user === undefined
                  ? `user in the subject ${identityProblem(subjectUser)}`
                  : !parsed || parsed.success
                    ? 'body is not JSON'
                    : describeIssue(parsed.error).message;
            opts.log.warn({ subject: m.subject, reason: why }, 'inbound execution refused');
            m.term();
            continue;
          }
          const { user: bodyUser, ...execution } = parsed.data;
          if (bodyUser !== undefined && bodyUser !== user) {
            opts.log.warn({ subject: m.subject }, 'inbound execution refused: body user differs from the subject');
            m.term();
            continue;
          }
          try {
            await opts.executions.record(user, execution);
            m.ack();
          } catch (err) {
            if (err instanceof EventRequestError) {
              opts.log.warn({ subject: m.subject, reason: err.message }, 'inbound execution refused');
              m.term();
            } else {
              m.nak(1000);
            }
          }
        }
      } catch (err) {
        if (stopped) return;
        opts.log.warn({ err }, 'inbound executions consumer failed; retrying');
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
