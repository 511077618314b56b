import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { consumeInbound } from '../executions/inbound-consumer.js';
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

/**
 * Notifications published by other services on `notif.in.<user>` (JetStream work-queue stream),
 * through the shared inbound consumer (src/executions/inbound-consumer.ts): validated exactly like
 * the service API (same schema, same dedup by id, in NotificationService.post) and appended to the
 * user's log.
 */
export function consumeNotificationInbound(opts: NotificationInboundOptions): () => void {
  return consumeInbound<unknown>({
    ...opts,
    prefix: NOTIF_IN_PREFIX,
    durable: NOTIF_INBOUND_DURABLE,
    what: 'notification',
    handle: (user, body, append) => opts.notifications.post(user, body, append),
  });
}
