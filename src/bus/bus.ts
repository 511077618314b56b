/**
 * The bus carries MessagePack payloads between feeds, gateways and services. Two
 * implementations share one contract (test/unit/bus-contract): NATS for scale-out, and an
 * in-process bus for the embedded default.
 *
 * Subject wildcards follow NATS: `*` matches exactly one token, `>` (last token only) matches one
 * or more tokens.
 */
import type { NatsConnection } from '@nats-io/transport-node';

export type Unsubscribe = () => void;
export type BusHandler = (subject: string, payload: Uint8Array) => void;

export interface Bus {
  /** Publish a payload. Never throws on the hot path; delivery is at most once. */
  publish(subject: string, payload: Uint8Array): void;
  /** Subscribe to a subject or wildcard pattern. */
  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe;
  /** Resolves when everything published so far has reached the server (no-op in process). */
  flush(): Promise<void>;
  /** Whether the bus can currently deliver (for /ready). */
  readonly connected: boolean;
  close(): Promise<void>;
  /** Connection state changes (NATS reconnects); the in-process bus never changes state. */
  onStatus?(listener: (state: BusState, detail?: string) => void): Unsubscribe;
  /** Request/reply between processes; absent on the in-process bus, where services are called directly. */
  readonly requests?: BusRequests;
  /** Durable streams on the bus's server (NATS JetStream); absent on the in-process bus. */
  readonly streams?: BusStreams;
}

export type BusState = 'connected' | 'disconnected' | 'reconnecting' | 'closed';

/** Request/reply: one responder of a queue group answers each request. */
export interface BusRequests {
  /** Rejects when nobody answers within `timeoutMs`. */
  request(subject: string, payload: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  /** Answer requests on `subject` as a member of `queue`. */
  serve(subject: string, queue: string, handler: (payload: Uint8Array) => Promise<Uint8Array>): Unsubscribe;
}

/** Durable streams: the connection JetStream clients (event logs, inbound consumers) run on. */
export interface BusStreams {
  /** The connection, or undefined when the server runs without JetStream (`nats-server -js`). */
  jetStream(): Promise<NatsConnection | undefined>;
}

export function isValidSubject(subject: string, allowWildcards: boolean): boolean {
  if (subject.length === 0 || /\s/.test(subject)) return false;
  const tokens = subject.split('.');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.length === 0) return false;
    if (t === '*' || t === '>') {
      if (!allowWildcards) return false;
      if (t === '>' && i !== tokens.length - 1) return false;
      continue;
    }
    if (t.includes('*') || t.includes('>')) return false;
  }
  return true;
}
