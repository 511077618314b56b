import { AckPolicy, DeliverPolicy, JetStreamApiError } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { z } from 'zod';
import { decodeBusMessage } from '../codec/tick-codec.js';
import { identityProblem } from '../core/identity.js';
import { KeyedSerial } from '../core/keyed-serial.js';
import type { AppendOptions } from './event-log.js';
import type { ExecutionService } from './execution-service.js';
import { EventRequestError } from './execution-service.js';
import { describeIssue, ExecutionSchema, UserIdSchema } from './schemas.js';
import { EXEC_IN_PREFIX, userOf } from '../bus/private-subjects.js';

export const INBOUND_DURABLE = 'tickwire-exec-in';
const INBOUND_HEARTBEAT_MS = 1000;
const INBOUND_PULL_EXPIRES_MS = 5000;
/**
 * A message delivered to a gateway that died (or to a pull lost with a node) is redelivered this
 * long after; a message being handled is kept by a "working" ack every third of it.
 */
const INBOUND_ACK_WAIT_MS = 10_000;
/** a consumer that received nothing this long while messages wait undelivered is started again */
const INBOUND_WATCHDOG_MS = 3000;
/**
 * Messages a gateway holds at once (delivered, not yet stored): each user's in the order they came,
 * one after another, different users' side by side. A held message gets a "working" ack every
 * third of the ack wait, so it is not delivered again to another gateway while it waits behind
 * the user's earlier ones. Before, messages waited unseen in the client's queue: a batch that took
 * longer than the ack wait to work through was delivered again to the other gateways, which then
 * looked each up before appending it (test/faults/inbound-cluster.test.ts, two gateways under
 * load: 1,247 of 2,263 orders not in the log, 1,000 redeliveries).
 */
const INBOUND_HELD = 32;
/**
 * What a pull asks for (the client pulls again when 2 are left): messages received and not yet
 * taken by the loop are not kept alive, so few.
 */
const INBOUND_PULL = 8;
const INBOUND_REFILL_AT = 2;

type InboundLog = { warn(obj: object, msg: string): void };

/** One inbound work queue: where it is, and what to do with each valid message. */
export interface InboundConsumerOptions<T> {
  jsm: JetStreamManager;
  js: JetStreamClient;
  /** the work-queue stream */
  stream: string;
  /** subject prefix, `<prefix><user>` (escaped as in docs/private-streams.md) */
  prefix: string;
  /** durable consumer name, shared by every gateway */
  durable: string;
  /** what a message carries, for the log lines (`inbound <what> refused`) */
  what: string;
  /** body schema; without it the decoded body is handed on as is (the handler validates it) */
  schema?: z.ZodType<T>;
  /**
   * Store one message of `user`. An EventRequestError with a status below 500 refuses it (logged,
   * terminated, never redelivered); any other failure redelivers it. A redelivered message has
   * `redeliveredSince` (its first delivery may have been stored: see AppendOptions).
   */
  handle(user: string, body: T, opts: AppendOptions): Promise<unknown>;
  log: InboundLog;
  /** delay before a failed message is redelivered, doubled per delivery up to maxRetryDelayMs (default 1000) */
  retryDelayMs?: number;
  /** default 15 000 */
  maxRetryDelayMs?: number;
  /** how long a consumer may stay silent while messages wait undelivered before it is started again (default 3000) */
  watchdogMs?: number;
  /** the durable's ack wait: a message delivered to a gateway that died is redelivered this long after (default 10 000) */
  ackWaitMs?: number;
}

const decoder = new TextDecoder();

function decodeBody(data: Uint8Array): unknown {
  // JSON (the documented format); MessagePack accepted for producers already speaking it
  if (data.length > 0 && (data[0] === 0x7b || data[0] === 0x20 || data[0] === 0x0a)) return JSON.parse(decoder.decode(data));
  return decodeBusMessage(data);
}

/**
 * Messages published by other systems on `<prefix><user>` (a JetStream work-queue stream): a
 * durable pull consumer shared by the gateways hands each valid one to `handle` and acks it.
 * Invalid messages are terminated (logged, never redelivered); a failed `handle` is redelivered
 * until it succeeds, 1 s later, then twice as long each time up to 15 s. Used for
 * `exec.in.<user>` and `notif.in.<user>`.
 */
export function consumeInbound<T>(opts: InboundConsumerOptions<T>): () => void {
  let stopped = false;
  let messages: ConsumerMessages | undefined;
  const retryMs = opts.retryDelayMs ?? 1000;
  const maxRetryMs = opts.maxRetryDelayMs ?? 15_000;
  const refuse = (subject: string, reason: string): void => opts.log.warn({ subject, reason }, `inbound ${opts.what} refused`);
  // Watchdog: the client library re-issues pulls after missed heartbeats, but a consumer whose
  // node died at the wrong moment can stay silent. When this gateway received nothing for a
  // while, messages wait undelivered and no gateway got one since the last check, the consume is
  // started again (the other gateways' watchdogs do the same).
  let lastDelivery = Date.now();
  let deliveredAt = -1;
  // messages held (delivered, not yet stored or refused): a consumer holding some is not silent
  // (an append can wait on a timeout)
  let held = 0;
  // per user, messages handled one after another (the next one of the user waits for the last)
  const perUser = new KeyedSerial();
  // wakes the loop when a held message is done
  let room: (() => void) | undefined;
  const retryDelay = (deliveries: number): number => retryMs * 2 ** Math.min(16, deliveries - 1);
  const watchdogMs = opts.watchdogMs ?? INBOUND_WATCHDOG_MS;
  const ackWaitMs = opts.ackWaitMs ?? INBOUND_ACK_WAIT_MS;
  const watchdog = setInterval(() => {
    if (stopped || !messages || held > 0 || Date.now() - lastDelivery < watchdogMs) return;
    opts.jsm.consumers.info(opts.stream, opts.durable).then(
      (ci) => {
        const delivered = ci.delivered.stream_seq;
        if (ci.num_pending > 0 && delivered === deliveredAt && held === 0 && Date.now() - lastDelivery >= watchdogMs) {
          deliveredAt = -1;
          opts.log.warn({ stream: opts.stream, pending: ci.num_pending }, `inbound ${opts.what}s consumer stalled; starting it again`);
          messages?.stop();
        } else deliveredAt = delivered;
      },
      () => undefined,
    );
  }, watchdogMs);
  watchdog.unref();
  const run = async (): Promise<void> => {
    while (!stopped) {
      try {
        // Every delivery is retried until it is stored (no max_deliver: a message that fails
        // only fails while the log is unreachable, and dropping it would lose it); invalid ones
        // are terminated. A durable created with older settings is brought to these.
        const settings = { ack_wait: nanos(ackWaitMs), max_deliver: -1 };
        try {
          const ci = await opts.jsm.consumers.info(opts.stream, opts.durable);
          if (ci.config.ack_wait !== settings.ack_wait || (ci.config.max_deliver ?? -1) > 0) {
            await opts.jsm.consumers.update(opts.stream, opts.durable, settings);
          }
        } catch (err) {
          if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
          await opts.jsm.consumers.add(opts.stream, {
            durable_name: opts.durable,
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            filter_subject: opts.prefix + '>',
            ...settings,
          });
        }
        const consumer = await opts.js.consumers.get(opts.stream, opts.durable);
        if (stopped) return;
        // a durable, replicated consumer: the client re-issues its pulls after missed heartbeats and
        // the server moves the consumer to a live node; unacked messages are redelivered. The
        // client's defaults (30 s pulls, heartbeats every 15 s) left intake stalled for over 30 s
        // after a node died (test/faults/nats-cluster.test.ts); pulls of 5 s with a heartbeat
        // every second notice a dead node within about 2 s.
        messages = await consumer.consume({
          max_messages: INBOUND_PULL,
          threshold_messages: INBOUND_REFILL_AT,
          expires: INBOUND_PULL_EXPIRES_MS,
          idle_heartbeat: INBOUND_HEARTBEAT_MS,
        });
        lastDelivery = Date.now();
        for await (const m of messages) {
          lastDelivery = Date.now();
          const subjectUser = userOf(m.subject, opts.prefix);
          // the id in the subject follows the same rules as one in a token or the service API
          const user = subjectUser !== undefined && identityProblem(subjectUser) === undefined ? subjectUser : undefined;
          let body: unknown;
          try {
            body = decodeBody(m.data);
          } catch {
            body = undefined;
          }
          const parsed = body === undefined || !opts.schema ? undefined : opts.schema.safeParse(body);
          if (user === undefined || body === undefined || (parsed && !parsed.success)) {
            refuse(
              m.subject,
              subjectUser === undefined
                ? `subject must be ${opts.prefix}<user>, the user escaped as in docs/private-streams.md`
                : user === undefined
                  ? `user in the subject ${identityProblem(subjectUser)}`
                  : body === undefined
                    ? 'body is not JSON'
                    : describeIssue(parsed!.error!).message,
            );
            m.term();
            continue;
          }
          // Held from here until stored: "working" acks keep it from being redelivered to another
          // gateway while it waits behind the user's earlier messages or its append is slow.
          const working = setInterval(() => m.working(), ackWaitMs / 3);
          held++;
          // One user's messages are stored in the order they came, one after another; other
          // users' messages do not wait for them (a slow append, a contended user).
          // (queued at once, before the handling below can end)
          void perUser.run(user, async () => {
            try {
              const redelivered = m.info.deliveryCount > 1 ? { redeliveredSince: Math.floor(m.info.timestampNanos / 1e6) } : {};
              await opts.handle(user, (parsed ? parsed.data : body) as T, redelivered);
              m.ack();
            } catch (err) {
              if (err instanceof EventRequestError && err.status < 500) {
                refuse(m.subject, err.message);
                m.term();
              } else {
                m.nak(Math.min(maxRetryMs, retryDelay(m.info.deliveryCount)));
              }
            } finally {
              clearInterval(working);
              held--;
              lastDelivery = Date.now();
              room?.();
            }
          });
          // at most INBOUND_HELD held: the next pull waits (the client pulls again as this loop
          // takes messages from it)
          while (held >= INBOUND_HELD) await new Promise<void>((r) => (room = r));
          room = undefined;
        }
      } catch (err) {
        if (stopped) return;
        opts.log.warn({ err }, `inbound ${opts.what}s consumer failed; retrying`);
      }
      if (!stopped) await new Promise((r) => setTimeout(r, 250));
    }
  };
  void run();
  return () => {
    stopped = true;
    clearInterval(watchdog);
    messages?.stop();
  };
}

const InboundExecutionSchema = ExecutionSchema.extend({ user: UserIdSchema.optional() }).strict();

export interface ExecutionInboundOptions {
  jsm: JetStreamManager;
  js: JetStreamClient;
  stream: string;
  executions: ExecutionService;
  log: InboundLog;
}

/**
 * Executions published by order systems on `exec.in.<user>`: appended to the execution log. A
 * `user` in the body must match the subject's.
 */
export function consumeExecutionInbound(opts: ExecutionInboundOptions): () => void {
  return consumeInbound({
    ...opts,
    prefix: EXEC_IN_PREFIX,
    durable: INBOUND_DURABLE,
    what: 'execution',
    schema: InboundExecutionSchema,
    handle: async (user, { user: bodyUser, ...execution }, append) => {
      if (bodyUser !== undefined && bodyUser !== user) throw new EventRequestError(400, 'BAD_REQUEST', 'body user differs from the subject', 'user');
      return opts.executions.record(user, execution, append);
    },
  });
}
