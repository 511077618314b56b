// eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are read loosely in assertions
export type Frame = Record<string, any>;

export interface SseEvent {
  event: string;
  data: string;
}

/**
 * A raw client of the HTTP-streaming transport for tests: opens `GET /v1/stream/sse` with fetch,
 * parses the event stream, and POSTs frames with the session header.
 */
export class SseTestClient {
  readonly events: SseEvent[] = [];
  /** protocol frames (default `message` events), batches flattened */
  readonly frames: Frame[] = [];
  session: string | undefined;
  closeEvent: { code: number; reason: string } | undefined;
  /** the response body ended (by the server, or by `close`) */
  ended = false;
  readonly #ctl: AbortController;
  readonly #waiters = new Set<() => void>();

  private constructor(
    readonly base: string,
    readonly res: Response,
    ctl: AbortController,
  ) {
    this.#ctl = ctl;
  }

  /** Open a stream; resolves once the session event arrived, or rejects with the HTTP status and body. */
  static async open(port: number, opts: { token?: string; tokenIn?: 'header' | 'query' } = {}): Promise<SseTestClient> {
    const base = `http://127.0.0.1:${port}/v1/stream/sse`;
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    let url = base;
    if (opts.token !== undefined) {
      if (opts.tokenIn === 'query') url += `?token=${encodeURIComponent(opts.token)}`;
      else headers.authorization = `Bearer ${opts.token}`;
    }
    const ctl = new AbortController();
    const res = await fetch(url, { headers, signal: ctl.signal });
    if (res.status !== 200) {
      const body = await res.text();
      throw Object.assign(new Error(`HTTP ${res.status}: ${body}`), {
        status: res.status,
        body: body ? (JSON.parse(body) as Frame) : undefined,
        headers: res.headers,
      });
    }
    const c = new SseTestClient(base, res, ctl);
    void c.#read();
    await c.waitFor(() => c.session !== undefined, 'the session event');
    return c;
  }

  async #read(): Promise<void> {
    const reader = this.res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length === 0) continue;
          const ev = { event, data: data.join('\n') };
          this.events.push(ev);
          const parsed = JSON.parse(ev.data) as Frame;
          if (event === 'session') this.session = parsed.session as string;
          else if (event === 'close') this.closeEvent = parsed as { code: number; reason: string };
          else this.frames.push(...(parsed.op === 'batch' ? (parsed.items as Frame[]) : [parsed]));
          this.#wake();
        }
      }
    } catch {
      // aborted
    }
    this.ended = true;
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Wait until `cond` holds (checked on every event); rejects after `timeoutMs`. */
  waitFor(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        this.#waiters.delete(check);
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames.slice(-5))}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  async waitFrame(pred: (f: Frame) => boolean, what: string, timeoutMs?: number): Promise<Frame> {
    await this.waitFor(() => this.frames.some(pred), what, timeoutMs);
    return this.frames.find(pred)!;
  }

  /** POST a body (frames joined by newlines); the HTTP status and JSON body. `session` null: no header. */
  async post(frames: (object | string)[], session?: string | null): Promise<{ status: number; body: Frame | undefined }> {
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    const id = session === undefined ? this.session : session;
    if (id !== null && id !== undefined) headers['x-tickwire-session'] = id;
    const body = frames.map((f) => (typeof f === 'string' ? f : JSON.stringify(f))).join('\n');
    const res = await fetch(this.base, { method: 'POST', headers, body });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Frame) : undefined };
  }

  /** Send one request and wait for the ack or error with its id. */
  async request(frame: Frame): Promise<Frame> {
    const r = await this.post([frame]);
    if (r.status !== 204) throw new Error(`POST answered ${r.status}: ${JSON.stringify(r.body)}`);
    return this.waitFrame((f) => (f.op === 'ack' || f.op === 'error' || f.op === 'pong') && f.id === frame.id, `reply to ${frame.id}`);
  }

  close(): void {
    this.#ctl.abort();
  }
}
