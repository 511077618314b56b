/**
 * The naive peer: `ws` with JSON text frames, one frame per tick per subscribed client (the
 * string is built once per tick, then `ws.send` frames it per socket). No throttling, no
 * backpressure policy.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { announce, peerEnv, subscribeQuotes } from './peer-common.js';

const env = peerEnv();
const subscribers = new Map<string, Set<WebSocket>>();
const http = createServer();
const wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  const mine: string[] = [];
  ws.on('message', (data) => {
    const req = JSON.parse(String(data)) as { op: string; id?: number; channels?: string[] };
    if (req.op !== 'subscribe' || !Array.isArray(req.channels)) return;
    for (const ch of req.channels) {
      let set = subscribers.get(ch);
      if (!set) subscribers.set(ch, (set = new Set()));
      set.add(ws);
      mine.push(ch);
    }
    ws.send(JSON.stringify({ op: 'ack', id: req.id, subscribed: req.channels, rejected: [] }));
  });
  ws.on('close', () => {
    for (const ch of mine) subscribers.get(ch)?.delete(ws);
  });
});

const nc = await subscribeQuotes(env.natsUrl, (ch, seq, d) => {
  const set = subscribers.get(ch);
  if (!set || set.size === 0) return;
  const text = JSON.stringify({ op: 'data', ch, seq, d });
  for (const ws of set) ws.send(text);
});

http.listen(env.port, env.host, () => {
  announce((http.address() as AddressInfo).port, () => {
    http.close();
    void nc.close();
  });
});
