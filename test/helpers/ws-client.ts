import { unpack, pack } from 'msgpackr';
import WebSocket from 'ws';
import { waitFor } from './wait.js';

export type Frame = Record<string, any>;

/**
 * A real WebSocket client for tests: records every frame (decoded with a plain MessagePack
 * decoder or JSON.parse), and waits for frames matching a predicate.
 */
export class TestClient {
  readonly frames: Frame[] = [];
  readonly raw: { data: Buffer; binary: boolean }[] = [];
  closeCode: number | undefined;
  closeReason = '';
  readonly #waiters = new Set<{ pred: (f: Frame) => boolean; resolve: (f: Frame) => void }>();
  readonly #closeWaiters: ((code: number) => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    readonly encoding: 'msgpack' | 'json',
  ) {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.raw.push({ data, binary: isBinary });
      const frame = (isBinary ? unpack(data) : JSON.parse(data.toString('utf8'))) as Frame;
      const frames = frame.op === 'batch' ? [frame, ...(frame.items as Frame[])] : [frame];
      for (const f of frames) {
        this.frames.push(f);
        for (const w of [...this.#waiters]) {
          if (w.pred(f)) {
            this.#waiters.delete(w);
            w.resolve(f);
          }
        }
      }
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      for (const w of this.#closeWaiters.splice(0)) w(code);
    });
    ws.on('error', () => undefined);
  }

  static async connect(
    url: string,
    opts: { encoding?: 'msgpack' | 'json' | 'none'; headers?: Record<string, string>; protocols?: string[] } = {},
  ): Promise<TestClient> {
    const encoding = opts.encoding ?? 'msgpack';
    const protocols = opts.protocols ?? (encoding === 'none' ? [] : [`tickwire.v1.${encoding}`]);
    const ws = new WebSocket(url, protocols, { headers: opts.headers ?? {}, maxPayload: 64 * 1024 * 1024 });
    const client = new TestClient(ws, encoding === 'json' ? 'json' : 'msgpack');
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { statusCode: res.statusCode })));
      ws.once('error', reject);
    });
    return client;
  }

  /** Send an object in the connection's encoding. */
  send(obj: unknown): void {
    if (this.encoding === 'json') this.ws.send(JSON.stringify(obj));
    else this.ws.send(pack(obj));
  }

  sendRaw(data: Buffer | string, binary: boolean): void {
    this.ws.send(data, { binary });
  }

  /** Wait for the next frame (already received or future) matching pred. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs = 10_000, fromIndex = 0): Promise<Frame> {
    const existing = this.frames.slice(fromIndex).find(pred);
    if (existing) return Promise.resolve(existing);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (f: Frame) => {
          clearTimeout(timer);
          resolve(f);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for a frame; last frames: ${JSON.stringify(this.frames.slice(-3)).slice(0, 500)}`));
      }, timeoutMs);
      this.#waiters.add(w);
    });
  }

  /** Wait until pred holds for `count` frames. */
  async waitForCount(pred: (f: Frame) => boolean, count: number, timeoutMs = 10_000): Promise<Frame[]> {
    return waitFor(
      () => {
        const got = this.frames.filter(pred);
        return got.length >= count ? got : undefined;
      },
      { what: `${count} matching frames`, timeout: timeoutMs },
    ).catch((err: Error) => {
      throw new Error(`${err.message} (got ${this.frames.filter(pred).length})`);
    });
  }

  /** Send and wait for the ack/pong/error with the same id. */
  async request(obj: { id: number | string } & Record<string, unknown>, timeoutMs = 10_000): Promise<Frame> {
    const p = this.waitFor((f) => f.id === obj.id && f.op !== 'data', timeoutMs, this.frames.length);
    this.send(obj);
    return p;
  }

  waitClose(timeoutMs = 10_000): Promise<number> {
    if (this.closeCode !== undefined) return Promise.resolve(this.closeCode);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('timed out waiting for close')), timeoutMs);
      this.#closeWaiters.push((code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
  }

  close(): void {
    try {
      this.ws.close(1000);
    } catch {
      // ignore
    }
  }
}
