import WS from 'ws';
import { startEngine, type Engine } from '../../src/app/engine.js';
import { TickwireClient } from '../../src/client/index.js';
import type { WebSocketConstructor, WebSocketLike } from '../../src/client/index.js';
import { freePort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Start the embedded engine on loopback, quiet. Without a port it picks a free one itself rather
 * than passing 0: uSockets sets SO_REUSEADDR only on listeners bound to an explicit port, and
 * without it the server-side TIME_WAIT connections of a closed engine block a restart on the
 * same port for a minute.
 */
export async function startTestEngine(port?: number, overrides: Record<string, unknown> = {}): Promise<Engine> {
  // retried until the port is ours: taken meanwhile by another test, or the old listener of a
  // restarted engine not yet released
  return waitFor(async () => startEngine({ host: '127.0.0.1', port: port ?? (await freePort()), log: { level: 'silent', format: 'json' }, ...overrides }), {
    what: `an engine listening${port ? ` on ${port}` : ''}`,
    timeout: 10_000,
    interval: 250,
  });
}

export const streamUrl = (port: number): string => `ws://127.0.0.1:${port}/v1/stream`;

/**
 * A `ws`-based WebSocket whose incoming messages pass through `filter` first: it may return the
 * message unchanged, a replacement, or undefined to drop it. Used to simulate lost frames and
 * dead connections in front of a real gateway.
 */
export interface Tap {
  /** return the message, a replacement, an array of messages to deliver, or undefined to drop it */
  filter: ((data: unknown, socket: number) => unknown) | undefined;
  /** while true, new connections fail as if the server were unreachable */
  block?: boolean;
  /** sockets created so far */
  sockets: (WebSocketLike & { terminate(): void })[];
}

export function filteringWebSocket(tap: Tap): WebSocketConstructor {
  class Filtering implements WebSocketLike {
    readonly #ws: WS;
    readonly #index: number;
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: unknown }) => void) | null = null;
    onclose: ((ev: { code: number; reason: string }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    constructor(url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) {
      // a blocked connection goes to a port nothing listens on (port 1) and fails like a dead network
      this.#ws = new WS(tap.block ? 'ws://127.0.0.1:1/' : url, protocols, options);
      this.#index = tap.sockets.length;
      tap.sockets.push(this);
      this.#ws.onopen = (ev) => this.onopen?.(ev);
      this.#ws.onerror = (ev) => this.onerror?.(ev);
      this.#ws.onclose = (ev) => this.onclose?.({ code: ev.code, reason: ev.reason });
      this.#ws.onmessage = (ev) => {
        const data = tap.filter ? tap.filter(ev.data, this.#index) : ev.data;
        if (data === undefined) return;
        for (const d of Array.isArray(data) ? data : [data]) this.onmessage?.({ data: d });
      };
    }
    get readyState(): number {
      return this.#ws.readyState;
    }
    get protocol(): string {
      return this.#ws.protocol;
    }
    get binaryType(): string {
      return this.#ws.binaryType;
    }
    set binaryType(v: string) {
      this.#ws.binaryType = v as WS['binaryType'];
    }
    send(data: string | Uint8Array): void {
      this.#ws.send(data);
    }
    close(code?: number, reason?: string): void {
      this.#ws.close(code, reason);
    }
    /** cut the TCP connection without a close handshake */
    terminate(): void {
      this.#ws.terminate();
    }
  }
  return Filtering as unknown as WebSocketConstructor;
}

/**
 * A JSON client of the engine at `port` whose sockets go through a tap (frames filtered,
 * connections cut), reconnecting quickly; closed by the caller's cleanups.
 */
export function tappedClient(
  port: number,
  cleanups: (() => unknown)[],
  extra: Partial<ConstructorParameters<typeof TickwireClient>[0]> = {},
): { client: TickwireClient; tap: Tap } {
  const tap: Tap = { filter: undefined, sockets: [] };
  const client = new TickwireClient({
    url: streamUrl(port),
    encoding: 'json',
    WebSocket: filteringWebSocket(tap),
    reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
    ...extra,
  });
  cleanups.push(() => client.close());
  return { client, tap };
}

/** Frames of the application's own on socket `i` of the tap: they take the connection's message burst. */
export function spendBurst(tap: Tap, i: number, n: number): void {
  for (let k = 0; k < n; k++) tap.sockets[i]!.send(JSON.stringify({ op: 'ping', id: `app-${Math.random()}` }));
}
