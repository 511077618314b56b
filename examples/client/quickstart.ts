import { TickwireClient } from '@tickwire/client';

const client = new TickwireClient({ url: process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream' });
let updates = 0;
client.channel('ticker:BTC-USD', (t) => console.log('BTC-USD', t.p, `${t.chgp.toFixed(2)}%`)); // t is a Ticker
client.channel('quote:BTC-USD', (q, u) => {
  console.log('bid', q.bp, 'ask', q.ap, u.snapshot ? '(snapshot)' : `seq ${u.seq}`);
  if (++updates === 5) void client.close();
});
client.on('state', ({ state }) => console.log('connection', state));
await client.connect();
const ack = await client.subscribe(['ticker:BTC-USD', 'quote:BTC-USD'], { throttle: 250 });
console.log('subscribed', ack.subscribed, 'at', ack.throttle, 'ms');
