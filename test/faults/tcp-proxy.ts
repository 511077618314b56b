import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type ProxyMode = 'pass' | 'stall' | 'refuse';

/**
 * A TCP proxy on loopback in front of a provider, to inject network faults: `drop()` cuts every
 * connection, mode `stall` stops forwarding bytes both ways (a black hole: sockets stay open),
 * mode `refuse` closes new connections at once (provider down), `pass` forwards normally.
 */
export class TcpProxy {
  mode: ProxyMode = 'pass';
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  connections = 0;
  private constructor(
    readonly server: Server,
    readonly targetPort: number,
  ) {}

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    const proxy = new TcpProxy(server, targetPort);
    server.on('connection', (client) => proxy.#accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return proxy;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  #accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'refuse') {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = connect(this.targetPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (d: Buffer) => {
        if (this.mode === 'pass') to.write(d);
        // stalled: bytes are swallowed, as on a dead network path
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    upstream.on('close', close);
  }

  /** cut every open connection (both sides see a reset) */
  drop(): void {
    for (const { client, upstream } of [...this.#pairs]) {
      client.resetAndDestroy();
      upstream.destroy();
    }
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise((r) => this.server.close(r));
  }
}
