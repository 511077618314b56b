/**
 * The HTTP-streaming fallback transport, client side (docs/client-sdk.md#fallback-transport):
 * a `WebSocketLike` over `fetch`, for networks that refuse WebSocket upgrades. The stream
 * (`GET /v1/stream/sse`) carries the protocol v1 frames as JSON in Server-Sent Events framing;
 * frames to the server go by `POST` with the session id, one at a time in order (frames queued
 * meanwhile share the next POST, one per line). Always JSON (`tickwire.v1.json`).
 *
 * fetch rather than `EventSource`: it can send the token in the `Authorization` header (kept out
 * of URLs and logs), reports the HTTP status and body of a refusal, and leaves reconnecting to
 * the client, which resubscribes with fresh snapshots as it does for WebSockets.
 */
export const HTTP_STREAM_PROTOCOL = 'tickwire.v1.json';
const SESSION_HEADER = 'x-tickwire-session';

/** `ws://host/v1/stream` → `http://host/v1/stream/sse` (query dropped but `token`). */
export function httpStreamUrl(wsUrl: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  if (!u.pathname.endsWith('/sse')) u.pathname = u.pathname.replace(/\/$/, '') + '/sse';
  const token = u.searchParams.get('token');
  u.search = '';
  if (token !== null) u.searchParams.set('token', token);
  return u.toString();
}

type FetchLike = typeof fetch;

/** Structurally a `WebSocketLike` (client.ts), which checks it where it picks the constructor. */
export class HttpStreamSocket {
  readyState = 0;
  readonly protocol = HTTP_STREAM_PROTOCOL;
  binaryType = 'arraybuffer';
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly url: string;
  readonly #postUrl: string;
  readonly #fetch: FetchLike;
  readonly #ctl = new AbortController();
  #session: string | undefined;
  #queue: string[] = [];
  #posting = false;
  #lastPost = 0;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #closeFrame: { code: number; reason: string } | undefined;

  constructor(url: string, _protocols?: string | string[], options?: { headers?: Record<string, string>; fetch?: FetchLike }) {
    this.url = httpStreamUrl(url);
    const post = new URL(this.url);
    post.search = '';
    this.#postUrl = post.toString();
    const f = options?.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new TypeError('HttpStreamSocket: no fetch implementation');
    this.#fetch = f.bind(globalThis);
    void this.#run(options?.headers ?? {});
  }

  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) throw new Error('HttpStreamSocket is not open');
    this.#queue.push(typeof data === 'string' ? data : new TextDecoder().decode(data));
    void this.#flush();
  }

  close(code = 1000, reason = ''): void {
    this.#finish(code, reason);
  }

  async #run(headers: Record<string, string>): Promise<void> {
    let res: Response;
    try {
      res = await this.#fetch(this.url, { headers: { accept: 'text/event-stream', ...headers }, signal: this.#ctl.signal, cache: 'no-store' });
    } catch (err) {
      this.#fail(1006, `HTTP stream: ${(err as Error).message ?? String(err)}`);
      return;
    }
    if (res.status !== 200 || !res.body) {
      let message = '';
      let reason = '';
      try {
        const body = (await res.json()) as { message?: string; code?: string };
        message = body.message ?? '';
        reason = body.code ?? '';
      } catch {
        // no JSON body
      }
      // a refused token is a policy close, as the server sends on a WebSocket; an unavailable
      // key set (jwks_unavailable) is an outage, not a verdict on the token
      const code = (res.status === 401 || res.status === 403) && reason !== 'jwks_unavailable' ? 1008 : 1006;
      this.#fail(code, `HTTP stream refused: ${res.status}${reason ? ` (${reason})` : ''}${message ? ' ' + message : ''}`);
      return;
    }
    try {
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          this.#event(block);
          if (this.readyState === 3) return;
        }
      }
    } catch {
      // aborted, or the network dropped the stream
    }
    const cf = this.#closeFrame;
    this.#finish(cf?.code ?? 1006, cf?.reason ?? 'HTTP stream ended');
  }

  #event(block: string): void {
    let event = 'message';
    let data = '';
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line.startsWith('data: ') ? 6 : 5);
      // comments (heartbeats) and other fields are ignored
    }
    if (!data) return;
    if (event === 'message') {
      this.onmessage?.({ data });
      return;
    }
    try {
      const o = JSON.parse(data) as { session?: string; idle_timeout_ms?: number; code?: number; reason?: string };
      if (event === 'session' && typeof o.session === 'string') this.#opened(o.session, o.idle_timeout_ms ?? 120_000);
      else if (event === 'close' && typeof o.code === 'number') this.#closeFrame = { code: o.code, reason: o.reason ?? '' };
    } catch {
      // an event this client does not know
    }
  }

  #opened(session: string, idleMs: number): void {
    this.#session = session;
    this.#lastPost = Date.now();
    this.readyState = 1;
    // the server ends sessions that POST nothing for idleMs: an empty POST keeps it alive
    const every = Math.max(1000, Math.floor(idleMs / 3));
    this.#keepAlive = setInterval(() => {
      if (Date.now() - this.#lastPost >= every && !this.#posting) void this.#post('');
    }, every);
    this.onopen?.({});
  }

  async #flush(): Promise<void> {
    if (this.#posting || this.#queue.length === 0 || this.readyState !== 1) return;
    const body = this.#queue.splice(0).join('\n');
    await this.#post(body);
    if (this.#queue.length > 0) void this.#flush();
  }

  async #post(body: string): Promise<void> {
    this.#posting = true;
    this.#lastPost = Date.now();
    try {
      const res = await this.#fetch(this.#postUrl, {
        method: 'POST',
        headers: { [SESSION_HEADER]: this.#session ?? '', 'content-type': 'text/plain;charset=UTF-8' },
        body,
        signal: this.#ctl.signal,
      });
      if (res.status !== 204) {
        let message = '';
        try {
          message = ((await res.json()) as { message?: string }).message ?? '';
        } catch {
          // no JSON body
        }
        // an unknown session: the stream is gone too (or about to be); frames cannot reach the server
        this.#fail(1006, `HTTP stream POST answered ${res.status}${message ? ' ' + message : ''}`);
      }
    } catch (err) {
      if (this.readyState !== 3) this.#fail(1006, `HTTP stream POST failed: ${(err as Error).message ?? String(err)}`);
    } finally {
      this.#posting = false;
    }
  }

  #fail(code: number, message: string): void {
    if (this.readyState === 3) return;
    this.onerror?.({ message });
    this.#finish(code, message.slice(0, 120));
  }

  #finish(code: number, reason: string): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    this.#queue = [];
    this.#ctl.abort();
    // like a WebSocket, the close event comes asynchronously
    setTimeout(() => this.onclose?.({ code, reason, wasClean: code === 1000 }), 0);
  }
}
