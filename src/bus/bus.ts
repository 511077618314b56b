/**
 * The bus carries MessagePack payloads between feeds, gateways and services. Two
 * implementations share one contract (test/unit/bus-contract): NATS for scale-out, and an
 * in-process bus for the embedded default.
 *
 * Subject wildcards follow NATS: `*` matches exactly one token, `>` (last token only) matches one
 * or more tokens.
 */
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
