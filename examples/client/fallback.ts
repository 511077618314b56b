import { TickwireClient } from '@tickwire/client';

// where a proxy refuses WebSocket upgrades, the client streams over HTTP by itself
const client = new TickwireClient({
  url: process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream',
  fallback: { retryWebSocketMs: 60_000 }, // on the stream, try WebSocket again every minute
});
let quotes = 0;
client.channel('quote:BTC-USD', (q) => {
  console.log('bid', q.bp, 'over', client.transport);
  if (++quotes === 3) void client.close();
});
await client.connect();
console.log('connected over', client.transport); // 'websocket', or 'http' where upgrades are refused
await client.subscribe(['quote:BTC-USD'], { throttle: 250 });
