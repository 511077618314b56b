import { createServer } from 'node:net';
import WS from 'ws';
import { startEngine, type Engine } from '../../src/app/engine.js';
import type { WebSocketConstructor, WebSocketLike } from '../../src/client/index.js';

/**
 * A currently free loopback port, drawn at random below the kernel's ephemeral range (where
 * port-0 binds land). uSockets binds explicit ports with SO_REUSEPORT, so two engines can share a
 * port without an error: a port that one test frees for a restart must not be handed to another
 * test meanwhile, which a random pick from 15000-29999 makes very unlikely.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = 15000 + Math.floor(Math.random() * 15000);
    const ok = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

/**
 * Start the embedded engine on loopback, quiet. Without a port it picks a free one itself rather
 * than passing 0: uSockets sets SO_REUSEADDR only on listeners bound to an explicit port, and
 * without it the server-side TIME_WAIT connections of a closed engine block a restart on the
 * same port for a minute.
 */
export async function startTestEngine(port?: number, overrides: Record<string, unknown> = {}): Promise<Engine> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    const p = port ?? (await freePort());
    try {
      return await startEngine({ host: '127.0.0.1', port: p, log: { level: 'silent', format: 'json' }, ...overrides });
    } catch (err) {
      lastErr = err; // the port was taken meanwhile, or the old listener is not released yet
      await sleep(250);
    }
  }
  throw lastErr;
}

export const streamUrl = (port: number): string => `ws://127.0.0.1:${port}/v1/stream`;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `cond` holds; fails with `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

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
