import { ClientErrorCode, CloseCode, ErrorCode, TickwireClient, TickwireClientError } from '@tickwire/client';

const client = new TickwireClient({
  url: process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream',
  reconnect: { initialDelayMs: 250, maxDelayMs: 15_000 }, // or false
});
client.on('error', (err) => {
  // a resubscribe or gap refresh the gateway never answered (over its message rate): ask again
  if (err.code === ClientErrorCode.TIMEOUT && err.channels) client.resync(err.channels);
  else console.log('error', err.code, err.message);
});
client.on('rejected', (r) => console.log(`rejected ${r.channel}: ${r.code} (${r.reason})`));
client.on('close', (c) => console.log(`closed ${c.code}${c.code === CloseCode.SLOW_CONSUMER ? ' (slow consumer)' : ''}, reconnecting: ${c.willReconnect}`));
client.on('gap', (g) => console.log(`missed ${g.missed} updates on ${g.channel}; the client refreshes it`));

await client.connect();
const ack = await client.subscribe(['quote:BTC-USD', 'quote:NOPE', 'ticker:btc-usd']);
console.log('subscribed', ack.subscribed);
try {
  await client.subscribe(['quote:BTC-USD'], { throttle: -1 });
} catch (err) {
  if (err instanceof TickwireClientError && err.code === ErrorCode.BAD_REQUEST) console.log('refused request:', err.message);
  else throw err;
}
await client.close();
