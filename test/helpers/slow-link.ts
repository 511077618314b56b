import { connect, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

/**
 * A TCP proxy to `127.0.0.1:targetPort` that holds what its clients send for `delayMs` before
 * passing it on (answers come back at once): a process on the far end of a slow link, e.g. a
 * NATS server in another zone. A subscription sent through it reaches the server `delayMs` late.
 */
export async function slowLink(targetPort: number, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<Socket>();
  const server: Server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1');
    open.add(inbound).add(outbound);
    inbound.on('data', (d) => setTimeout(() => outbound.write(d), delayMs));
    outbound.on('data', (d) => inbound.write(d));
    const end = (): void => {
      inbound.destroy();
      outbound.destroy();
      open.delete(inbound);
      open.delete(outbound);
    };
    inbound.on('close', end).on('error', end);
    outbound.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      }),
  };
}
