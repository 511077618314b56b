import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP proxy in front of a gateway that refuses WebSocket upgrades with 403, as some
 * corporate proxies do, and passes plain HTTP through (streaming, unbuffered). Setting
 * `allowUpgrades` lets upgrades through again (raw TCP relay), as when the network is fixed.
 */
export class NoUpgradeProxy {
  allowUpgrades = false;
  refusedUpgrades = 0;
  readonly #server: http.Server;
  readonly #sockets = new Set<net.Socket>();
  /** the client sides of relayed (upgraded) connections */
  readonly #relayed = new Set<net.Socket>();

  private constructor(readonly target: number) {
    this.#server = http.createServer((req, res) => {
      const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        res.flushHeaders();
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      res.on('close', () => up.destroy());
      req.pipe(up);
    });
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    this.#server.on('upgrade', (req, socket, head) => {
      if (!this.allowUpgrades) {
        this.refusedUpgrades++;
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        return;
      }
      const client = socket as net.Socket;
      this.#relayed.add(client);
      client.on('close', () => this.#relayed.delete(client));
      const upstream = net.connect(target, '127.0.0.1', () => {
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(lines.join('\r\n') + '\r\n\r\n');
        if (head.length) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      const kill = (): void => {
        upstream.destroy();
        socket.destroy();
      };
      upstream.on('error', kill);
      socket.on('error', kill);
      upstream.on('close', kill);
      socket.on('close', kill);
    });
  }

  static async start(target: number): Promise<NoUpgradeProxy> {
    const p = new NoUpgradeProxy(target);
    await new Promise<void>((resolve) => p.#server.listen(0, '127.0.0.1', resolve));
    return p;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Cut every relayed WebSocket connection (no close handshake), as a restarting server would. */
  dropUpgraded(): void {
    for (const s of this.#relayed) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
