import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TickwireError } from '../core/errors.js';
import type { EngineMetrics } from './metrics.js';
import type { Readiness } from './readiness.js';

export interface OpsServerOptions {
  host: string;
  port: number;
  /** extra fields for /health */
  health?: () => Record<string, unknown>;
  ready: () => Readiness;
  metrics?: EngineMetrics;
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
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const json = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { error: 'METHOD_NOT_ALLOWED', message: 'use GET' });
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
          (text) => res.writeHead(200, { 'content-type': m.contentType, 'cache-control': 'no-store' }).end(text),
          (err: unknown) => json(500, { error: 'METRICS', message: (err as Error).message }),
        );
        return;
      }
      json(404, { error: 'NOT_FOUND', message: `no route for ${req.method} ${path}` });
    });
    server.keepAliveTimeout = 5000;
    ops = new OpsServer(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(new TickwireError('LISTEN', `ops server cannot listen on ${opts.host}:${opts.port} (ops.port / TICKWIRE_OPS_PORT): ${err.message}`, { cause: err })));
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
