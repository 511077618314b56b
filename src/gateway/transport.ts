import type { WebSocket } from 'uWebSockets.js';

/**
 * The transport seam: what a `Connection` (protocol state of one client) needs of the channel
 * its frames travel on. The uWS WebSocket is one implementation (`UwsTransport`), the HTTP
 * streaming fallback another (`HttpStreamTransport`, src/gateway/http-stream.ts), and unit tests
 * use an in-memory one (test/helpers/memory-transport.ts).
 *
 * The other direction is the transport's owner calling the connection: `onMessage` (a client
 * frame), `checkBackpressure` (the transport drained: the writable callback), `onPong` and
 * `onClose`.
 */
export interface Transport {
  /** the client's address, as text */
  readonly remoteAddress: string;
  /** Send one encoded frame to this client only. */
  send(bytes: Uint8Array, binary: boolean): void;
  /** Receive what is published to a hub topic (see `TopicPublisher`) from now on. */
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  /** Run `fn` with this client's writes gathered into one (uWS cork). */
  cork(fn: () => void): void;
  /** Bytes accepted for this client and not yet written to the network: the slow-consumer measure. */
  bufferedAmount(): number;
  /**
   * A read-lag ping with this payload; the client's answer comes back as `Connection.onPong`.
   * Absent on transports without pings (read lag is then not measured, buffered bytes still are).
   */
  ping?: ((payload: string) => void) | undefined;
  /** Close with a protocol v1 close code and a reason (at most 120 characters). */
  end(code: number, reason: string): void;
}

/** A uWS WebSocket as a transport; topics are uWS topics (`app.publish`). */
export class UwsTransport implements Transport {
  readonly remoteAddress: string;
  readonly #ws: WebSocket<unknown>;

  constructor(ws: WebSocket<unknown>, remoteAddress: string) {
    this.#ws = ws;
    this.remoteAddress = remoteAddress;
  }

  send(bytes: Uint8Array, binary: boolean): void {
    this.#ws.send(bytes, binary);
  }

  subscribe(topic: string): void {
    this.#ws.subscribe(topic);
  }

  unsubscribe(topic: string): void {
    this.#ws.unsubscribe(topic);
  }

  cork(fn: () => void): void {
    this.#ws.cork(fn);
  }

  bufferedAmount(): number {
    return this.#ws.getBufferedAmount();
  }

  ping(payload: string): void {
    this.#ws.ping(payload);
  }

  end(code: number, reason: string): void {
    try {
      this.#ws.end(code, reason.slice(0, 120));
    } catch {
      // already closed by the peer
    }
  }
}

/** A transport that takes topic frames from `LocalTopics` rather than from uWS. */
export interface TopicSink {
  /** one published frame (bytes as the hub encoded them for the topic's encoding) */
  deliver(bytes: Uint8Array, binary: boolean): void;
}

/**
 * Hub topics for transports that are not uWS WebSockets: uWS `app.publish` reaches only its own
 * WebSockets, so the gateway's publisher hands each frame to this registry as well. A topic
 * nobody here joined costs one map lookup.
 */
export class LocalTopics {
  readonly #topics = new Map<string, Set<TopicSink>>();

  /** topics with at least one local member */
  get size(): number {
    return this.#topics.size;
  }

  join(topic: string, sink: TopicSink): void {
    let set = this.#topics.get(topic);
    if (!set) this.#topics.set(topic, (set = new Set()));
    set.add(sink);
  }

  leave(topic: string, sink: TopicSink): void {
    const set = this.#topics.get(topic);
    if (!set) return;
    set.delete(sink);
    if (set.size === 0) this.#topics.delete(topic);
  }

  publish(topic: string, bytes: Uint8Array, binary: boolean): void {
    const set = this.#topics.get(topic);
    if (set) for (const s of set) s.deliver(bytes, binary);
  }
}
