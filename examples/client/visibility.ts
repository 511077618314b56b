import { TickwireClient } from '@tickwire/client';

const client = new TickwireClient({ url: process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream' });
client.on('ticker', (u) => {
  if (u.snapshot) console.log('snapshot', u.channel, 'seq', u.seq); // after each change of tier
});
await client.connect();
await client.subscribe(['ticker:AAPL', 'ticker:MSFT'], { throttle: 250 });
await client.subscribe(['ticker:NVDA'], { throttle: 250, visible: false }); // starts off screen
await client.setVisible(['ticker:MSFT'], false); // scrolled away: the slow tier
await client.setVisible(['ticker:NVDA'], true); // scrolled into view: a snapshot, then 250 ms
await client.setPageVisible(false); // a hidden tab (browsers do this by themselves): tickers pause
console.log('page visible:', client.pageVisible);
await client.setPageVisible(true); // shown again: a snapshot of each, then live
console.log('page visible:', client.pageVisible);
await client.close();
