import { decimal, price } from '../sdk/decimal.js';

/**
 * Coinbase Advanced Trade WebSocket `level2` channel (API reference "Level 2 order book", and
 * "WebSocket Channels" > Level2 Channel). Subscribed as channel `level2`; its messages carry
 * channel `l2_data`. Each event has `type` ("snapshot" or "update"), `product_id` and `updates`,
 * an array of {side, event_time, price_level, new_quantity}. `new_quantity` is the updated size
 * at the price level, not a delta; "0" means the level can be removed. The channel "guarantees
 * delivery of all updates", so the book is the snapshot plus every update in order; a lost
 * message shows as a jump in the connection's `sequence_num` (handled by the adapter).
 */

export type Level = [number, number];

export interface L2Event {
  type: 'snapshot' | 'update';
  productId: string;
  bids: Level[];
  asks: Level[];
  /** latest `event_time` of the updates in ns ("the time of the event as recorded by our trading engine"), when usable */
  eventTime?: bigint;
  /** side values that are neither "bid" nor "offer": their levels are left out */
  unknownSides: string[];
}

/**
 * The side of a level. The documented example shows `"side": "bid"` for bids; the sell side is
 * read as "offer", the word Coinbase's order book uses for it. Nothing else is guessed: any
 * other value is returned as unknown, and the adapter reports it as an error.
 */
export function bookSide(v: unknown): 'bids' | 'asks' | undefined {
  return v === 'bid' ? 'bids' : v === 'offer' ? 'asks' : undefined;
}

/** One `l2_data` event; `toNs` converts an RFC 3339 time. A malformed level throws naming the field. */
export function parseL2Event(ev: Record<string, unknown>, toNs: (iso: string) => bigint): L2Event {
  if (ev.type !== 'snapshot' && ev.type !== 'update') throw new RangeError(`l2_data.type: ${JSON.stringify(ev.type)} is neither snapshot nor update`);
  if (typeof ev.product_id !== 'string') throw new RangeError(`l2_data.product_id: ${JSON.stringify(ev.product_id)} is not a product`);
  if (!Array.isArray(ev.updates)) throw new RangeError('l2_data.updates: not an array');
  const out: L2Event = { type: ev.type, productId: ev.product_id, bids: [], asks: [], unknownSides: [] };
  ev.updates.forEach((u: Record<string, unknown>, i: number) => {
    const side = bookSide(u?.side);
    if (!side) {
      out.unknownSides.push(String(u?.side));
      return;
    }
    const q = decimal(u.new_quantity, `l2_data.updates[${i}].new_quantity`);
    if (q < 0) throw new RangeError(`l2_data.updates[${i}].new_quantity: ${JSON.stringify(u.new_quantity)} is negative`);
    out[side].push([price(u.price_level, `l2_data.updates[${i}].price_level`), q]);
    // the snapshot's levels carry 1970-01-01T00:00:00Z (the documented example): not a time to use
    if (typeof u.event_time === 'string') {
      try {
        const t = toNs(u.event_time);
        if (t > 0n && (out.eventTime === undefined || t > out.eventTime)) out.eventTime = t;
      } catch {
        // an unreadable event_time leaves the message timestamp in use
      }
    }
  });
  return out;
}
