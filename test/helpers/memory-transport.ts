import { unpack } from 'msgpackr';
import type { LocalTopics, TopicSink, Transport } from '../../src/gateway/transport.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are read loosely in assertions
export type Frame = Record<string, any>;

/**
 * An in-memory transport: what `Connection` sends is decoded into `frames` (batches flattened
 * into `items`), hub topics come through a `LocalTopics` registry, and the buffered amount is
 * whatever the test sets, to play a client that stops reading. Drives protocol handling without
 * a server.
 */
export class MemoryTransport implements Transport, TopicSink {
  readonly remoteAddress: string;
  /** every message received, decoded (a batch is one message) */
  readonly messages: Frame[] = [];
  /** pings sent (read-lag probe payloads) */
  readonly pings: string[] = [];
  /** topics joined now */
  readonly joined = new Set<string>();
  /** bytes "not yet written": set by the test */
  buffered = 0;
  /** cork calls, and messages sent while corked */
  corks = 0;
  #corked = false;
  ended: { code: number; reason: string } | undefined;
  /** called by `end`, as a real transport's close callback would (the test wires conn.onClose) */
  onEnd: ((code: number) => void) | undefined;

  constructor(
    readonly topics: LocalTopics,
    opts: { remoteAddress?: string; ping?: boolean } = {},
  ) {
    this.remoteAddress = opts.remoteAddress ?? '127.0.0.1';
    if (opts.ping === false) this.ping = undefined;
  }

  /** data, batch items, ack, error... one entry per frame, batches flattened */
  get frames(): Frame[] {
    return this.messages.flatMap((m) => (m.op === 'batch' ? (m.items as Frame[]) : [m]));
  }

  data(ch?: string): Frame[] {
    return this.frames.filter((f) => f.op === 'data' && (ch === undefined || f.ch === ch));
  }

  ofOp(op: string): Frame[] {
    return this.frames.filter((f) => f.op === op);
  }

  send(bytes: Uint8Array, binary: boolean): void {
    if (this.ended) throw new Error('send after end');
    this.messages.push((binary ? unpack(bytes) : JSON.parse(Buffer.from(bytes).toString('utf8'))) as Frame);
  }

  deliver(bytes: Uint8Array, binary: boolean): void {
    this.send(bytes, binary);
  }

  subscribe(topic: string): void {
    this.joined.add(topic);
    this.topics.join(topic, this);
  }

  unsubscribe(topic: string): void {
    this.joined.delete(topic);
    this.topics.leave(topic, this);
  }

  cork(fn: () => void): void {
    this.corks++;
    const was = this.#corked;
    this.#corked = true;
    try {
      fn();
    } finally {
      this.#corked = was;
    }
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  ping: ((payload: string) => void) | undefined = (payload: string): void => {
    this.pings.push(payload);
  };

  end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = { code, reason };
    for (const t of this.joined) this.topics.leave(t, this);
    this.joined.clear();
    this.onEnd?.(code);
  }
}
