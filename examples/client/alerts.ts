import { TickwireClient, TickwireClientError } from '@tickwire/client';

const client = new TickwireClient({
  url: process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream',
  getToken: () => process.env.TICKWIRE_TOKEN, // alerts and notifications are the token's user's
});
client.channel('notifications', (n) => {
  if (n.kind === 'notification') console.log(`notification ${n.id}: ${n.title}`);
});

try {
  await client.connect();
  await client.subscribe(['notifications']);
  const rule = await client.createAlert({ id: 'btc-dip', symbol: 'BTC-USD', kind: 'change', direction: 'down', percent: 3, windowMs: 3_600_000 });
  console.log(`created ${rule.id}: ${rule.state.phase}`);
  console.log('rules:', (await client.listAlerts()).map((a) => `${a.id} (${a.kind} ${a.symbol})`));
  await client.createAlert({ id: 'bad', symbol: 'BTC-USD', kind: 'price', direction: 'above', level: -1 }).catch((err: TickwireClientError) => {
    console.log(`refused: ${err.code}: ${err.message}`);
  });
  console.log('deleted', await client.deleteAlert('btc-dip'));
} finally {
  await client.close();
}
