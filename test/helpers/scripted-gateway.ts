import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

/** A client frame as a scripted gateway reads it (JSON). */
export type ClientFrame = { op: string; id: number; channels?: string[]; history?: number; depth?: number; throttle?: number };

export interface ScriptedGateway {
  readonly wss: WebSocketServer;
  readonly port: number;
  /** every client frame received, in order */
  readonly frames: ClientFrame[];
  /** connections accepted so far */
  connections(): number;
}

/**
 * A WebSocket server on a loopback port (`port`, or a free one) that speaks protocol v1 JSON
 * (`tickwire.v1.json`) as a test scripts it, for the client SDK's tests: each connection gets a
 * `welcome` (conn `c1`, `c2`, ...), and each client frame is kept in `frames` and handed to
 * `onFrame` with its socket.
 */
export async function startScriptedGateway(onFrame: (ws: WebSocket, req: ClientFrame) => void, port = 0): Promise<ScriptedGateway> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, handleProtocols: () => 'tickwire.v1.json' });
  await new Promise((r) => wss.once('listening', r));
  const frames: ClientFrame[] = [];
  let connections = 0;
  wss.on('connection', (ws: WebSocket) => {
    connections++;
    ws.send(JSON.stringify({ op: 'welcome', conn: `c${connections}`, protocol: 1, server_time: Date.now() }));
    ws.on('message', (raw) => {
      const req = JSON.parse(String(raw)) as ClientFrame;
      frames.push(req);
      onFrame(ws, req);
    });
  });
  return { wss, port: (wss.address() as { port: number }).port, frames, connections: () => connections };
}

/** The gateway's `ack` of a subscribe: every channel subscribed, none rejected, no throttle. */
export function subscribeAck(req: ClientFrame): object {
  return { op: 'ack', id: req.id, subscribed: req.channels, rejected: [], throttle: 0 };
}

/** A scripted gateway that acks each subscribe (subscribeAck) and then sends `frames`, in order. */
export function startGatewaySending(frames: readonly object[]): Promise<ScriptedGateway> {
  return startScriptedGateway((ws, req) => {
    if (req.op !== 'subscribe') return;
    ws.send(JSON.stringify(subscribeAck(req)));
    for (const f of frames) ws.send(JSON.stringify(f));
  });
}
