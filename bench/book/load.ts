/**
 * Bench load process: C WebSocket clients (msgpack), each subscribing to K channels of kind
 * `book` or `quote` out of N symbols at a throttle; counts delivered items. IPC:
 *   -> {type:'ready'} once every client has its acks
 *   <- {type:'count'} -> {type:'count', items, bytes}
 */
import WebSocket from 'ws';
import { pack, unpack } from 'msgpackr';

const [port, kind, clientsArg, perClientArg, symbolsArg, throttleArg, depthArg] = process.argv.slice(2);
const clients = Number(clientsArg);
const perClient = Number(perClientArg);
const nSymbols = Number(symbolsArg);
let items = 0;
let bytes = 0;
let acked = 0;
let seed = 777;
const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const sockets: WebSocket[] = [];

async function open(c: number): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, 'tickwire.v1.msgpack');
  sockets.push(ws);
  const chosen = new Set<number>();
  while (chosen.size < Math.min(perClient, nSymbols)) chosen.add(Math.floor(rnd() * nSymbols));
  const channels = [...chosen].map((i) => `${kind}:C${String(i).padStart(2, '0')}-USD`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('message', (data: Buffer) => {
    bytes += data.byteLength;
    const f = unpack(data) as { op: string; items?: unknown[] };
    if (f.op === 'data') items++;
    else if (f.op === 'batch') items += f.items!.length;
    else if (f.op === 'ack') acked++;
  });
  ws.send(pack({ op: 'subscribe', id: c, channels, throttle: Number(throttleArg), depth: Number(depthArg) }));
}

for (let c = 0; c < clients; c += 50) await Promise.all(Array.from({ length: Math.min(50, clients - c) }, (_, j) => open(c + j)));
while (acked < clients) await new Promise((r) => setTimeout(r, 20));
process.on('message', (m: { type: string }) => {
  if (m.type === 'count') process.send!({ type: 'count', items, bytes });
  else if (m.type === 'stop') {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  }
});
process.send!({ type: 'ready' });
