import { ErrorCode, ProtocolLimits } from './codes.js';
import { ProtocolError } from './errors.js';
import type { ClientRequest, RequestId, SubscribeRequest, VisibilityRequest } from './frames.js';
import { LONE_SURROGATE } from './text.js';

/**
 * The client-request parser of protocol v1: validates a decoded client frame
 * (docs/protocol.md#client-frames). Shared by every transport of the gateway; dependency-free.
 */

export const MAX_CHANNELS_PER_REQUEST = ProtocolLimits.MAX_CHANNELS_PER_REQUEST;
/** Most closed bars `history` may ask for on subscribe (docs/protocol.md#limits). */
export const MAX_HISTORY_BARS = ProtocolLimits.MAX_HISTORY_BARS;
/** Largest `depth` a subscribe may carry at all (docs/protocol.md#order-books-booksymbol). */
export const MAX_BOOK_DEPTH = ProtocolLimits.MAX_BOOK_DEPTH;

/**
 * `id` of a frame if it has a usable one, for echoing in errors. A string id must be well-formed
 * Unicode: one with a lone surrogate could not be echoed as sent (frames carry well-formed text),
 * so the client could not match the answer to its request.
 */
export function requestIdOf(frame: unknown): RequestId | undefined {
  if (frame && typeof frame === 'object' && !Array.isArray(frame)) {
    const id = (frame as Record<string, unknown>).id;
    if ((typeof id === 'number' && Number.isFinite(id)) || (typeof id === 'string' && id.length <= ProtocolLimits.MAX_ID_LENGTH && !LONE_SURROGATE.test(id)))
      return id;
  }
  return undefined;
}

function bad(message: string): never {
  throw new ProtocolError(ErrorCode.BAD_REQUEST, message);
}

function channelsOf(o: Record<string, unknown>, op: string): string[] {
  const ch = o.channels;
  if (!Array.isArray(ch)) bad(`${op}: "channels" must be an array of channel names, e.g. ["quote:AAPL"]`);
  if (ch.length === 0) bad(`${op}: "channels" is empty`);
  if (ch.length > MAX_CHANNELS_PER_REQUEST) {
    throw new ProtocolError(ErrorCode.LIMIT, `${op}: at most ${MAX_CHANNELS_PER_REQUEST} channels per request`);
  }
  for (const c of ch) if (typeof c !== 'string') bad(`${op}: every channel must be a string, got ${c === null ? 'null' : typeof c}`);
  return ch as string[];
}

/** Validate a decoded frame; throws ProtocolError (BAD_REQUEST / UNKNOWN_OP / LIMIT). */
export function parseRequest(frame: unknown, extensions?: ReadonlySet<string>): ClientRequest {
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) bad('a frame must be an object with an "op" field');
  const o = frame as Record<string, unknown>;
  if (typeof o.op !== 'string') bad('"op" must be a string');
  let id: RequestId | undefined;
  if (o.id !== undefined) {
    id = requestIdOf(o);
    if (id === undefined)
      bad(`"id" must be a finite number or a string of at most ${ProtocolLimits.MAX_ID_LENGTH} characters (well-formed Unicode: no lone surrogate)`);
  }
  const withId = <T extends object>(r: T): T & { id?: RequestId } => (id === undefined ? r : { ...r, id });
  switch (o.op) {
    case 'subscribe': {
      const channels = channelsOf(o, 'subscribe');
      let throttle = 0;
      if (o.throttle !== undefined) {
        if (typeof o.throttle !== 'number' || !Number.isFinite(o.throttle) || o.throttle < 0) {
          bad('subscribe: "throttle" must be a number of milliseconds >= 0');
        }
        throttle = o.throttle;
      }
      let snapshot = true;
      if (o.snapshot !== undefined) {
        if (typeof o.snapshot !== 'boolean') bad('subscribe: "snapshot" must be true or false');
        snapshot = o.snapshot;
      }
      const req: SubscribeRequest = withId({ op: 'subscribe' as const, channels, throttle, snapshot });
      if (o.since !== undefined) {
        if (typeof o.since !== 'number' || !Number.isInteger(o.since) || o.since < 0) bad('subscribe: "since" must be a sequence number (integer >= 0)');
        req.since = o.since;
      }
      if (o.history !== undefined) {
        if (typeof o.history !== 'number' || !Number.isInteger(o.history) || o.history < 0 || o.history > MAX_HISTORY_BARS) {
          bad(`subscribe: "history" must be a number of bars, an integer from 0 to ${MAX_HISTORY_BARS}`);
        }
        if (!snapshot && o.history > 0) bad('subscribe: "history" comes with the snapshot: it cannot be combined with "snapshot": false');
        if (o.history > 0) req.history = o.history;
      }
      if (o.visible !== undefined) {
        if (typeof o.visible !== 'boolean') bad('subscribe: "visible" must be true or false');
        req.visible = o.visible;
      }
      if (o.depth !== undefined) {
        if (typeof o.depth !== 'number' || !Number.isInteger(o.depth) || o.depth < 1 || o.depth > MAX_BOOK_DEPTH) {
          bad(`subscribe: "depth" must be an integer from 1 to ${MAX_BOOK_DEPTH} (book levels per side, e.g. 10, 25 or 100)`);
        }
        req.depth = o.depth;
      }
      return req;
    }
    case 'unsubscribe':
      return withId({ op: 'unsubscribe' as const, channels: channelsOf(o, 'unsubscribe') });
    case 'ping':
      return withId({ op: 'ping' as const });
    case 'auth': {
      if (typeof o.token !== 'string' || o.token.length === 0) bad('auth: "token" must be a non-empty string (a JWT)');
      if (o.token.length > ProtocolLimits.MAX_TOKEN_LENGTH) bad(`auth: "token" is longer than ${ProtocolLimits.MAX_TOKEN_LENGTH} characters`);
      return withId({ op: 'auth' as const, token: o.token });
    }
    case 'visibility': {
      const req: VisibilityRequest = withId({ op: 'visibility' as const });
      if (o.page !== undefined) {
        if (o.page !== 'visible' && o.page !== 'hidden') bad('visibility: "page" must be "visible" or "hidden"');
        req.page = o.page;
      }
      if (o.channels !== undefined || o.visible !== undefined) {
        if (typeof o.visible !== 'boolean') bad('visibility: "visible" must be true or false (with "channels")');
        req.channels = channelsOf(o, 'visibility');
        req.visible = o.visible;
      }
      if (req.page === undefined && req.channels === undefined)
        bad('visibility: give "page" ("visible"/"hidden") and/or "channels" with "visible" (true/false)');
      return req;
    }
    default:
      if (extensions?.has(o.op)) return withId({ op: 'extension' as const, name: o.op, frame: o });
      throw new ProtocolError(
        ErrorCode.UNKNOWN_OP,
        `unknown op "${o.op.slice(0, 32)}": use subscribe, unsubscribe, ping, auth, visibility${extensions && extensions.size > 0 ? ', ' + [...extensions].join(', ') : ''}`,
      );
  }
}

/** Map a requested throttle to the server tier: the smallest tier >= max(request, minimum). */
export function throttleTier(requested: number, tiers: readonly number[], minMs: number): number {
  const want = Math.max(requested, minMs);
  const sorted = [...tiers].sort((a, b) => a - b);
  for (const t of sorted) if (t >= want) return t;
  return sorted[sorted.length - 1]!;
}
