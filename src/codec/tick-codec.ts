import { Packr } from 'msgpackr';
import type { Tick } from '../core/schema.js';

/**
 * Bus encoding of canonical ticks: MessagePack, encoded once per tick by the producer.
 * Times are bigint nanoseconds and travel as 64-bit integers.
 */
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', moreTypes: false, mapsAsObjects: true });

export function encodeTick(tick: Tick): Uint8Array {
  return packr.pack(tick);
}

export function decodeTick(payload: Uint8Array): Tick {
  return packr.unpack(payload) as Tick;
}

/** Generic bus payload codec for non-tick messages (health, user events). */
export function encodeBusMessage(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decodeBusMessage<T = unknown>(payload: Uint8Array): T {
  return packr.unpack(payload) as T;
}
