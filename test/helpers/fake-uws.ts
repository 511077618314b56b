import { unpack } from 'msgpackr';
import { CODECS } from '../../src/codec/frames.js';
import type { FrameCodec } from '../../src/codec/frames.js';
import type { HubSubscriber, TopicPublisher } from '../../src/fanout/hub.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are read loosely in assertions
export type Frame = Record<string, any>;

/** Mimics uWS for hub tests: topics map to joined subscribers; publish copies bytes to each. */
export class FakeUws implements TopicPublisher {
  readonly topics = new Map<string, Set<FakeSub>>();
  publishes = 0;
  /** `now`: the (virtual) time stamped on each frame a subscriber receives */
  constructor(readonly now: () => number = () => 0) {}
  publish(topic: string, bytes: Uint8Array): void {
    this.publishes++;
    for (const s of this.topics.get(topic) ?? []) s.receive(bytes);
  }
}

/** A hub subscriber that decodes what it receives (batches flattened into items). */
export class FakeSub implements HubSubscriber {
  readonly frames: Frame[] = [];
  /** time at which each frame arrived (parallel to frames) */
  readonly at: number[] = [];
  /** WebSocket messages received (a batch counts once) */
  messages = 0;
  closed = false;
  constructor(
    readonly uws: FakeUws,
    readonly codec: FrameCodec = CODECS.msgpack,
  ) {}
  join(topic: string): void {
    let set = this.uws.topics.get(topic);
    if (!set) this.uws.topics.set(topic, (set = new Set()));
    set.add(this);
  }
  leave(topic: string): void {
    this.uws.topics.get(topic)?.delete(this);
  }
  send(bytes: Uint8Array): void {
    this.receive(bytes);
  }
  receive(bytes: Uint8Array): void {
    this.messages++;
    const f = (this.codec.encoding === 'json' ? JSON.parse(Buffer.from(bytes).toString()) : unpack(bytes)) as Frame;
    const items: Frame[] = f.op === 'batch' ? f.items : [f];
    for (const item of items) {
      this.frames.push(item);
      this.at.push(this.uws.now());
    }
  }
  data(ch?: string): Frame[] {
    return this.frames.filter((f) => f.op === 'data' && (!ch || f.ch === ch));
  }
}
