import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { TickwireError } from '../core/errors.js';
import { framingProblemOf, framingRefusalBody } from '../http/http-framing.js';
import { statusLine } from '../http/http.js';
import { NOSNIFF } from '../http/security-headers.js';
import type { EngineMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';
import { METRICS_FAILED } from './routes.js';

export interface OpsServerOptions {
  host: string;
  port: number;
  /** extra fields for /health */
  health?: () => Record<string, unknown>;
  ready: () => Readiness;
  metrics?: EngineMetrics;
  /** where a failed metrics collection is logged (the scraper gets a fixed message) */
  log?: { error(obj: object, msg?: string): void };
}

/**
 * A small HTTP server with /health, /ready and /metrics for processes that run no gateway
 * (`tickwire feed`): the gateway serves the same routes on its own port.
 */
export class OpsServer {
  readonly #server: Server;
  readonly startedAt = Date.now();
  #accepting = true;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async listen(opts: OpsServerOptions): Promise<OpsServer> {
    let ops: OpsServer | undefined;
    // sockets whose request was refused for its framing: whatever follows on them is not parsed
    // into responses (Node's parser has the rest of the read in hand and goes on with it)
    const refused = new WeakSet<Socket>();
    const server = createServer((req, res) => {
      if (refused.has(req.socket)) return;
      const path = (req.url ?? '/').split('?')[0];
      // every answer says nosniff, like the gateway's (src/http/security-headers.ts)
      res.setHeader('x-content-type-options', NOSNIFF['x-content-type-options']);
      const json = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
      };
      // Node's parser already refuses duplicate Content-Length, Content-Length with
      // Transfer-Encoding, obs-fold and malformed lines (see clientError); the same rules as
      // the gateway's catch the rest (e.g. `Transfer-Encoding: xchunked`)
      const pairs: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
      const problem = framingProblemOf(pairs);
      if (problem !== undefined) {
        const text = framingRefusalBody(problem);
        refused.add(req.socket);
        res.shouldKeepAlive = false;
        res
          .writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), connection: 'close' })
          .end(text, () => req.socket.destroy());
        return;
      }
      // RFC 9110 15.5.6: a 405 names the methods in Allow; OPTIONS lists them
      if (req.method === 'OPTIONS') return void res.writeHead(204, { allow: 'GET, HEAD' }).end();
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'METHOD_NOT_ALLOWED', message: 'use GET' }, { allow: 'GET, HEAD' });
      if (path === '/health') {
        return json(200, { status: 'ok', uptime_s: Math.round((Date.now() - ops!.startedAt) / 1000), ...opts.health?.() });
      }
      if (path === '/ready') {
        const r = opts.ready();
        const ready = r.ready && ops!.#accepting;
        return json(ready ? 200 : 503, { ready, checks: { ...r.checks, accepting: ops!.#accepting } });
      }
      if (path === '/metrics' && opts.metrics) {
        const m = opts.metrics;
        m.render().then(
          // Content-Length written here: Node leaves it out of a HEAD answer otherwise (RFC 9110 9.3.2: HEAD sends GET's headers)
          (text) => res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text),
          (err: unknown) => {
            opts.log?.error({ err }, 'collecting metrics failed: answered 500');
            json(500, METRICS_FAILED);
          },
        );
        return;
      }
      json(404, { error: 'NOT_FOUND', message: `no route for ${req.method} ${path}` });
    });
    server.keepAliveTimeout = 5000;
    // what Node's HTTP parser refuses (ambiguous framing, malformed header lines): 400 with a
    // JSON body, then the socket is closed, so nothing after the bad request is parsed
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const [status, code] =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'HEADERS_TOO_LARGE']
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? [408, 'REQUEST_TIMEOUT']
            : [400, 'BAD_HTTP_FRAMING'];
      const text =
        code === 'BAD_HTTP_FRAMING'
          ? framingRefusalBody(String((err as { reason?: string }).reason ?? err.message))
          : JSON.stringify({ error: code, message: err.message });
      if (socket.writable && !refused.has(socket as Socket)) {
        socket.write(
          `HTTP/1.1 ${statusLine(status)}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
        );
      }
      (socket as Socket).destroySoon();
    });
    ops = new OpsServer(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new TickwireError('LISTEN', `ops server cannot listen on ${opts.host}:${opts.port} (ops.port / TICKWIRE_OPS_PORT): ${err.message}`, { cause: err }),
        ),
      );
      server.listen(opts.port, opts.host, () => resolve());
    });
    return ops;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** /ready answers 503 from now on (first step of shutdown). */
  stopAccepting(): void {
    this.#accepting = false;
  }

  async close(): Promise<void> {
    this.#accepting = false;
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
