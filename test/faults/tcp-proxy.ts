import { createServer, connect } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export type ProxyMode = 'pass' | 'stall' | 'hold' | 'refuse';

/**
 * A TCP proxy on loopback in front of a provider, to inject network faults: `drop()` cuts every
 * connection, mode `stall` stops forwarding bytes both ways (a black hole: sockets stay open),
 * mode `hold` keeps the bytes both ways until `release()` (a slow path: nothing is lost),
 * mode `refuse` closes new connections at once (provider down), `pass` forwards normally.
 */
export class TcpProxy {
  mode: ProxyMode = 'pass';
  readonly #pairs = new Set<{ client: Socket; upstream: Socket }>();
  /** bytes kept in mode `hold`, in arrival order, with the socket they go to */
  #held: { to: Socket; d: Buffer }[] = [];
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
        else if (this.mode === 'hold') this.#held.push({ to, d });
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

  /** back to `pass`: the bytes held meanwhile are delivered first, in order */
  release(): void {
    this.mode = 'pass';
    const held = this.#held;
    this.#held = [];
    for (const { to, d } of held) if (!to.destroyed) to.write(d);
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
