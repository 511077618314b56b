import { LocalBook, TickwireClient } from '@tickwire/client';

const CH = 'book:BTC-USD';
const client = new TickwireClient({ url: process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream' });
const book = new LocalBook();
let items = 0;
client.on('data', (u) => {
  if (u.channel !== CH) return;
  // a snapshot replaces the book, an update sets the levels it lists; false: checksum mismatch
  if (!book.apply(u)) {
    book.reset();
    client.resync([CH]); // a fresh snapshot (the client does this by itself on a seq gap)
    return;
  }
  const asks = book.asks().slice(0, 3).reverse();
  const bids = book.bids().slice(0, 3);
  console.log(`${u.snapshot ? 'snapshot' : 'update'} seq ${u.seq} checksum ok, depth ${book.depth}`);
  for (const [p, s] of asks) console.log(`  ask ${p.toFixed(2).padStart(10)} ${s}`);
  for (const [p, s] of bids) console.log(`  bid ${p.toFixed(2).padStart(10)} ${s}`);
  if (++items === 5) void client.close();
});
await client.connect();
const ack = await client.subscribe([CH], { depth: 10, throttle: 250 });
console.log('subscribed', ack.subscribed, 'at', ack.throttle, 'ms');
