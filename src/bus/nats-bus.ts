import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Bus, BusHandler, BusRequests, BusState, BusStreams, Unsubscribe } from './bus.js';
import { isValidSubject } from './bus.js';
import { TickwireError } from '../core/errors.js';
import { redactUrl } from '../core/secrets.js';

export interface NatsBusOptions {
  /** comma separated server URLs, e.g. nats://127.0.0.1:4222 */
  servers: string;
  name?: string;
  /** called on connection state changes (for logs, health and /ready) */
  onStatus?: (state: BusState, detail?: string) => void;
  /** a subscriber's handler threw (delivery to others goes on); default: console.error */
  onHandlerError?: (err: Error) => void;
}

/**
 * NATS implementation of the Bus. Reconnects forever; publishes made while disconnected are
 * buffered by the client (bounded by its reconnect buffer) and flushed on reconnect.
 */
export class NatsBus implements Bus {
  readonly nc: NatsConnection;
  #connected = true;
  readonly #subs = new Set<Subscription>();
  readonly #onHandlerError: (err: Error) => void;
  readonly #statusListeners = new Set<(state: BusState, detail?: string) => void>();
  readonly requests: BusRequests;
  readonly streams: BusStreams;

  private constructor(nc: NatsConnection, opts: NatsBusOptions) {
    this.nc = nc;
    this.#onHandlerError = opts.onHandlerError ?? ((err) => console.error(err));
    if (opts.onStatus) this.#statusListeners.add(opts.onStatus);
    const emit = (state: BusState, detail?: string): void => {
      for (const l of this.#statusListeners) l(state, detail);
    };
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.#connected = false;
          emit('disconnected', s.server);
        } else if (s.type === 'reconnecting') {
          emit('reconnecting');
        } else if (s.type === 'reconnect') {
          this.#connected = true;
          emit('connected', s.server);
        }
      }
    })().catch(() => undefined);
    void nc.closed().then(() => {
      this.#connected = false;
      emit('closed');
    });
    this.requests = {
      request: async (subject, payload, timeoutMs) => (await nc.request(subject, payload, { timeout: timeoutMs })).data,
      serve: (subject, queue, handler) => {
        const sub = nc.subscribe(subject, {
          queue,
          callback: (err, msg) => {
            if (err) return;
            void handler(msg.data).then((reply) => {
              try {
                msg.respond(reply);
              } catch {
                // requester gone or connection closing
              }
            });
          },
        });
        return () => sub.unsubscribe();
      },
    };
    let jetStream: Promise<NatsConnection | undefined> | undefined;
    this.streams = {
      // asked once: whether the server has JetStream does not change while connected
      jetStream: () =>
        (jetStream ??= jetstreamManager(nc).then(
          () => nc,
          () => undefined,
        )),
    };
  }

  onStatus(listener: (state: BusState, detail?: string) => void): Unsubscribe {
    this.#statusListeners.add(listener);
    return () => this.#statusListeners.delete(listener);
  }

  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const servers = opts.servers
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    try {
      const nc = await connect({
        servers,
        name: opts.name ?? 'tickwire',
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        maxPingOut: 3,
      });
      return new NatsBus(nc, opts);
    } catch (err) {
      throw new TickwireError('BUS_CONNECT', `cannot connect to NATS at ${servers.map(redactUrl).join(', ')} (NATS_URL): ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  get connected(): boolean {
    return this.#connected && !this.nc.isClosed();
  }

  publish(subject: string, payload: Uint8Array): void {
    try {
      this.nc.publish(subject, payload);
    } catch {
      // closed or draining: publishing is best effort on the market-data path
    }
  }

  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe {
    if (!isValidSubject(pattern, true)) throw new TickwireError('BUS_SUBJECT', `invalid subject pattern "${pattern}"`);
    const sub = this.nc.subscribe(pattern, {
      callback: (err, msg) => {
        if (err) return;
        try {
          onMessage(msg.subject, msg.data);
        } catch (e) {
          this.#onHandlerError(new TickwireError('BUS_HANDLER', `bus handler for ${msg.subject} threw`, { cause: e }));
        }
      },
    });
    this.#subs.add(sub);
    return () => {
      if (!this.#subs.delete(sub)) return;
      try {
        sub.unsubscribe();
      } catch {
        // already closed
      }
    };
  }

  async flush(): Promise<void> {
    if (!this.nc.isClosed()) await this.nc.flush();
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }
}
