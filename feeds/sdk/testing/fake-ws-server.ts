import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { FakeProvider } from './fake-provider.js';

/** One client connection to a fake provider, with per-connection protocol state. */
export interface FakeWsConn<S = Record<string, any>> {
  readonly ws: WebSocket;
  readonly url: URL;
  readonly headers: IncomingMessage['headers'];
  readonly state: S;
  /** frames the client sent, decoded as text (binary frames kept as Buffer) */
  readonly received: (string | Buffer)[];
  send(data: unknown): void;
}

export interface FakeWsServerOptions<S> {
  /** refuse the upgrade with an HTTP status (e.g. 401) */
  refuse?: (req: IncomingMessage) => number | undefined;
  initialState: () => S;
  onConnection?: (conn: FakeWsConn<S>) => void;
  onMessage?: (conn: FakeWsConn<S>, data: Buffer, isBinary: boolean) => void;
  /** called every `pumpMs` for each open connection unless paused: send data here */
  onPump?: (conn: FakeWsConn<S>) => void;
  pumpMs?: number;
  /** encode an object for `conn.send` (JSON text by default) */
  encode?: (conn: FakeWsConn<S>, value: unknown) => string | Buffer;
}

/**
 * A WebSocket server on 127.0.0.1 and a free port that vendor fake servers build on: it tracks
 * connections, pumps data on a timer, can pause data or drop every connection, and closes
 * without leaving sockets or timers behind.
 */
export class FakeWsServer<S = Record<string, any>> implements FakeProvider {
  readonly conns = new Set<FakeWsConn<S>>();
  /** every frame any client sent, in order (text as string, binary as Buffer) */
  readonly allReceived: (string | Buffer)[] = [];
  paused = false;
  /**
   * answer WebSocket pings with pongs (RFC 6455 5.5.2, what every provider's server does); false
   * plays a half-open connection: nothing arrives, not even a pong, and no close either
   */
  answersPings = true;
  /** hold each WebSocket upgrade this long before accepting it (ms): a client stays connecting meanwhile */
  upgradeDelayMs = 0;
  /** upgrades being held now (see upgradeDelayMs) */
  upgradesHeld = 0;
  #total = 0;
  readonly #wss: WebSocketServer;
  readonly #opts: FakeWsServerOptions<S>;
  #timer: NodeJS.Timeout | undefined;
  #port = 0;

  private constructor(wss: WebSocketServer, opts: FakeWsServerOptions<S>) {
    this.#wss = wss;
    this.#opts = opts;
  }

  static async start<S>(opts: FakeWsServerOptions<S>): Promise<FakeWsServer<S>> {
    // the server, once built: upgrades arrive only after start() returns it
    const ref: { server?: FakeWsServer<S> } = {};
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      perMessageDeflate: false,
      // pongs are sent by #accept, so that a test can stop them (answersPings)
      autoPong: false,
      verifyClient: (info, cb) => {
        const status = opts.refuse?.(info.req);
        if (status) cb(false, status, status === 401 ? 'Unauthorized' : 'Refused');
        else if (ref.server && ref.server.upgradeDelayMs > 0) {
          const s = ref.server;
          s.upgradesHeld++;
          setTimeout(() => {
            s.upgradesHeld--;
            cb(true);
          }, s.upgradeDelayMs).unref();
        } else cb(true);
      },
    });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', () => resolve());
      wss.once('error', reject);
    });
    const server = new FakeWsServer(wss, opts);
    ref.server = server;
    server.#port = (wss.address() as AddressInfo).port;
    wss.on('connection', (ws, req) => server.#accept(ws, req));
    if (opts.onPump) {
      server.#timer = setInterval(() => {
        if (server.paused) return;
        for (const c of server.conns) if (c.ws.readyState === WebSocket.OPEN) opts.onPump!(c);
      }, opts.pumpMs ?? 20);
    }
    return server;
  }

  /**
   * A provider that closes every connection (1001 going away) right after it opened, for the
   * adapters' connection-rate tests: `opened` gets the time (Date.now()) of each connection.
   */
  static closingEach(opened: number[] = []): Promise<FakeWsServer<Record<string, never>>> {
    return FakeWsServer.start<Record<string, never>>({
      initialState: () => ({}),
      onConnection: (conn) => {
        opened.push(Date.now());
        setImmediate(() => conn.ws.close(1001, 'going away'));
      },
    });
  }

  get url(): string {
    return `ws://127.0.0.1:${this.#port}`;
  }

  get port(): number {
    return this.#port;
  }

  get openConnections(): number {
    return [...this.conns].filter((c) => c.ws.readyState === WebSocket.OPEN).length;
  }

  get totalConnections(): number {
    return this.#total;
  }

  #accept(ws: WebSocket, req: IncomingMessage): void {
    this.#total++;
    const encode = this.#opts.encode;
    const conn: FakeWsConn<S> = {
      ws,
      url: new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`),
      headers: req.headers,
      state: this.#opts.initialState(),
      received: [],
      send(value) {
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(encode ? encode(conn, value) : typeof value === 'string' ? value : JSON.stringify(value));
      },
    };
    this.conns.add(conn);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const item = isBinary ? data : data.toString('utf8');
      conn.received.push(item);
      this.allReceived.push(item);
      this.#opts.onMessage?.(conn, data, isBinary);
    });
    ws.on('ping', (data: Buffer) => {
      if (this.answersPings && ws.readyState === WebSocket.OPEN) ws.pong(data);
    });
    ws.on('close', () => this.conns.delete(conn));
    ws.on('error', () => undefined);
    this.#opts.onConnection?.(conn);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  dropAll(): void {
    for (const c of this.conns) c.ws.terminate();
  }

  /** Every text frame received from clients, parsed as JSON where possible. */
  receivedJson(): unknown[] {
    return this.allReceived
      .filter((r): r is string => typeof r === 'string')
      .map((r) => {
        try {
          return JSON.parse(r) as unknown;
        } catch {
          return r;
        }
      });
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const c of this.conns) c.ws.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
