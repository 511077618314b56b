import { TickwireClient, type Bar } from '@tickwire/client';
import { fetchBars } from '@tickwire/client/history';

const url = process.env.TICKWIRE_URL ?? 'ws://127.0.0.1:8080/v1/stream';
const bars = new Map<number, Bar>(); // by bar start: updates replace, never duplicate
// a bar sent `empty` (its trades were cancelled): the interval has no bar, drop the one held
const put = (b: Bar): void => void (b.empty ? bars.delete(b.t) : bars.set(b.t, b));

const client = new TickwireClient({ url });
client.channel('bar.1m:BTC-USD', (bar, u) => {
  for (const b of u.history ?? []) put(b); // only on the snapshot: the closed bars before it
  put(bar);
});
await client.connect();
// the last 120 closed minute bars and the open one, then live; asked again after a reconnect or a gap
await client.subscribe(['bar.1m:BTC-USD'], { throttle: 250, history: 120 });

/** Where the next page back ends (`to`, exclusive): the oldest bar start asked so far; null: none older is kept. */
let pageTo: number | null | undefined;

/** One page further back: the closed bars that started before the oldest one held. */
async function loadOlder(limit = 500): Promise<number> {
  if (pageTo === null) return 0; // the oldest stored bar is held already
  const to = pageTo ?? Math.min(...bars.keys());
  // GET /v1/bars on the gateway of `url`; with auth pass { token }. A refusal throws a
  // BarsRequestError: code (RATE_LIMIT, FORBIDDEN, ...), param, status, retryAfter
  const page = await fetchBars(url, { symbol: 'BTC-USD', interval: '1m', to, limit });
  for (const b of page.bars) put(b);
  // `next`: the newest bar before this page, null when there is none (an emptied bar counts too)
  pageTo = page.next === null ? null : page.bars[0]!.t;
  return page.bars.length;
}

await new Promise((r) => setTimeout(r, 2000));
console.log('bars held', bars.size, 'older loaded', bars.size > 0 ? await loadOlder() : 0, 'more', pageTo !== null);
client.close();
