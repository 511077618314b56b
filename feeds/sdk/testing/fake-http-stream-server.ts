import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { FakeProvider } from './fake-provider.js';

/** One open streaming response of a fake HTTP provider. */
export interface FakeHttpStream<S = Record<string, any>> {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: URL;
  readonly state: S;
  /** write one line (objects are JSON encoded) */
  line(value: unknown): void;
}

export interface FakeHttpStreamOptions<S> {
  initialState: () => S;
  /** answer the request: return a status other than 200 (with an optional body: a string is sent as it is, else as JSON) to refuse it */
  check?: (req: IncomingMessage, url: URL) => { status: number; body?: unknown } | undefined;
  onStream?: (stream: FakeHttpStream<S>) => void;
  /** called every `pumpMs` per open stream unless paused */
  onPump?: (stream: FakeHttpStream<S>) => void;
  pumpMs?: number;
  /** called every `heartbeatMs` per open stream, even when paused */
  onHeartbeat?: (stream: FakeHttpStream<S>) => void;
  heartbeatMs?: number;
}

/**
 * An HTTP server on 127.0.0.1 and a free port whose responses never end: newline-delimited JSON
 * written with chunked transfer encoding, as OANDA's v20 streaming endpoints do.
 */
export class FakeHttpStreamServer<S = Record<string, any>> implements FakeProvider {
  readonly streams = new Set<FakeHttpStream<S>>();
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers'] }[] = [];
  paused = false;
  #total = 0;
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #timers: NodeJS.Timeout[] = [];
  #port = 0;

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start<S>(opts: FakeHttpStreamOptions<S>): Promise<FakeHttpStreamServer<S>> {
    let self: FakeHttpStreamServer<S> | undefined;
    const server = http.createServer((req, res) => self!.#handle(req, res, opts));
    self = new FakeHttpStreamServer<S>(server);
    server.on('connection', (s) => {
      self!.#sockets.add(s);
      s.on('close', () => self!.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    self.#port = (server.address() as AddressInfo).port;
    if (opts.onPump) {
      self.#timers.push(
        setInterval(() => {
          if (!self!.paused) for (const s of self!.streams) opts.onPump!(s);
        }, opts.pumpMs ?? 25),
      );
    }
    if (opts.onHeartbeat) {
      self.#timers.push(
        setInterval(() => {
          for (const s of self!.streams) opts.onHeartbeat!(s);
        }, opts.heartbeatMs ?? 100),
      );
    }
    return self;
  }

  #handle(req: IncomingMessage, res: ServerResponse, opts: FakeHttpStreamOptions<S>): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    this.requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    const refusal = opts.check?.(req, url);
    if (refusal) {
      // a string body goes out as it is (an HTML error page of a proxy), anything else as JSON
      const raw = typeof refusal.body === 'string';
      res.writeHead(refusal.status, { 'content-type': raw ? 'text/html' : 'application/json' });
      res.end(refusal.body === undefined ? '' : raw ? refusal.body : JSON.stringify(refusal.body));
      return;
    }
    this.#total++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' });
    const stream: FakeHttpStream<S> = {
      req,
      res,
      url,
      state: opts.initialState(),
      line(value) {
        if (!res.writableEnded && !res.destroyed) res.write((typeof value === 'string' ? value : JSON.stringify(value)) + '\n');
      },
    };
    this.streams.add(stream);
    res.on('close', () => this.streams.delete(stream));
    opts.onStream?.(stream);
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  get openConnections(): number {
    return this.streams.size;
  }

  get totalConnections(): number {
    return this.#total;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  dropAll(): void {
    for (const s of this.streams) s.res.destroy();
    this.streams.clear();
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers.length = 0;
    this.dropAll();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
