import { TickwireClient, TickwireClientError } from '@tickwire/client';

// In a browser app getToken calls your backend, e.g. fetch('/session/md-token').then((r) => r.text()).
const client = new TickwireClient({
  url: process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream',
  getToken: () => process.env.TICKWIRE_TOKEN,
});
client.on('error', (e) => console.error(`client error ${e.code}${e.reason ? ` (${e.reason})` : ''}: ${e.message}`));

try {
  await client.connect();
  const ack = await client.subscribe(['portfolio', 'executions']);
  console.log('authenticated; subscribed', ack.subscribed, 'rejected', ack.rejected.map((r) => `${r.channel}: ${r.code}`));
} catch (err) {
  if (err instanceof TickwireClientError && err.code === 'UNAUTHENTICATED') {
    console.log(`refused: ${err.reason}`); // expired, bad_signature, missing, ... : ask the user to sign in again
  } else throw err;
} finally {
  await client.close();
}
