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
// the auth check rides in this chunk: only an attempt that failed asks (auth-check.ts)
export { checkAuth } from './auth-check.js';

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
  /** `retryAfter`: the Retry-After header of a refused stream (429, 503), for the client's next delay */
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean; retryAfter?: string | null | undefined }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  readonly url: string;
  readonly #fetch: FetchLike;
  readonly #ctl = new AbortController();
  #session = '';
  #queue: string[] = [];
  #posting = false;
  #lastPost = 0;
  #keepAlive: ReturnType<typeof setInterval> | undefined;
  #closeFrame: { code: number; reason: string } | undefined;

  constructor(url: string, _protocols?: string | string[], options?: { headers?: Record<string, string>; fetch?: FetchLike }) {
    this.url = httpStreamUrl(url);
    this.#fetch = (options?.fetch ?? fetch).bind(globalThis);
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
    try {
      const res = await this.#fetch(this.url, { headers: { accept: 'text/event-stream', ...headers }, signal: this.#ctl.signal, cache: 'no-store' });
      if (res.status !== 200 || !res.body) {
        const { message, code } = await errorBody(res);
        // a refused token (401) is a policy close, as on a WebSocket; anything else is an outage,
        // retried: an unavailable key set (503 jwks_unavailable), and a page whose origin the
        // gateway does not allow (403 ORIGIN_NOT_ALLOWED: not about the token, and over
        // WebSocket the same refusal is an outage too, as a browser cannot read it there)
        const policy = res.status === 401 && code !== 'jwks_unavailable';
        this.#fail(policy ? 1008 : 1006, `HTTP stream refused: ${res.status}${code ? ` (${code})` : ''} ${message}`, res.headers.get('retry-after'));
        return;
      }
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          this.#event(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (this.readyState === 3) return;
        }
      }
    } catch (err) {
      // aborted, unreachable, or the network dropped the stream
      if (this.readyState === 0) this.#fail(1006, `HTTP stream: ${String(err)}`);
    }
    const cf = this.#closeFrame;
    this.#finish(cf?.code ?? 1006, cf?.reason ?? 'HTTP stream ended');
  }

  #event(block: string): void {
    let event = 'message';
    let data = '';
    // comments (heartbeats) and other fields are ignored
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(line.startsWith('data: ') ? 6 : 5);
    }
    if (!data) return;
    if (event === 'message') return void this.onmessage?.({ data });
    try {
      const o = JSON.parse(data) as { session?: string; idle_timeout_ms?: number; code?: number; reason?: string };
      if (event === 'close' && typeof o.code === 'number') this.#closeFrame = { code: o.code, reason: o.reason ?? '' };
      if (event !== 'session' || typeof o.session !== 'string') return;
      this.#session = o.session;
      this.#lastPost = Date.now();
      this.readyState = 1;
      // the server ends sessions that POST nothing for its idle timeout: an empty POST keeps it alive
      const every = Math.max(1000, (o.idle_timeout_ms ?? 120_000) / 3);
      this.#keepAlive = setInterval(() => {
        if (Date.now() - this.#lastPost >= every && !this.#posting) void this.#post('');
      }, every);
      this.onopen?.({});
    } catch {
      // an event this client does not know
    }
  }

  async #flush(): Promise<void> {
    if (this.#posting || this.#queue.length === 0 || this.readyState !== 1) return;
    await this.#post(this.#queue.splice(0).join('\n'));
    void this.#flush();
  }

  async #post(body: string): Promise<void> {
    this.#posting = true;
    this.#lastPost = Date.now();
    try {
      const res = await this.#fetch(this.url.replace(/\?.*$/, ''), {
        method: 'POST',
        headers: { [SESSION_HEADER]: this.#session, 'content-type': 'text/plain;charset=UTF-8' },
        body,
        signal: this.#ctl.signal,
      });
      // an unknown session: the stream is gone too (or about to be)
      if (res.status !== 204) this.#fail(1006, `HTTP stream POST answered ${res.status} ${(await errorBody(res)).message}`);
    } catch (err) {
      this.#fail(1006, `HTTP stream POST failed: ${String(err)}`);
    }
    this.#posting = false;
  }

  #fail(code: number, message: string, retryAfter?: string | null): void {
    if (this.readyState === 3) return;
    this.onerror?.({ message });
    this.#finish(code, message.slice(0, 120), retryAfter);
  }

  #finish(code: number, reason: string, retryAfter?: string | null): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    clearInterval(this.#keepAlive);
    this.#queue = [];
    this.#ctl.abort();
    // like a WebSocket, the close event comes asynchronously
    setTimeout(() => this.onclose?.({ code, reason, wasClean: code === 1000, retryAfter }), 0);
  }
}

/** `message` and `code` of a JSON error body, empty when there is none. */
async function errorBody(res: Response): Promise<{ message: string; code: string }> {
  try {
    const b = (await res.json()) as { message?: string; code?: string; error?: string };
    return { message: b.message ?? '', code: b.code ?? b.error ?? '' };
  } catch {
    return { message: '', code: '' };
  }
}
