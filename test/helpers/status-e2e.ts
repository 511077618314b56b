import { expect } from 'vitest';
import { TestClient } from './ws-client.js';
import type { Frame } from './ws-client.js';

const on = (ch: string, pred: (d: Record<string, any>) => boolean) => (f: Frame) => f.op === 'data' && f.ch === ch && pred(f.d);

/**
 * What each crypto feed's status test checks end to end, through a gateway on `port`, for
 * `symbol`: once the provider reports it halted (`halt`, after the first ticker; without `halt`
 * the provider starts halted), `status:SYM` carries `halted` matching `halted` and the ticker's
 * `status` follows; after `resume`, `status:SYM` is `trading` with `tradingCode`, and so is the
 * ticker.
 */
export async function expectStatusRoundTrip(
  port: number,
  symbol: string,
  o: { halt?: () => void; halted: Record<string, unknown>; resume: () => void; tradingCode: string },
): Promise<void> {
  const ticker = `ticker:${symbol}`;
  const status = `status:${symbol}`;
  const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, { encoding: 'json' });
  await c.request({ op: 'subscribe', id: 1, channels: [ticker, status], throttle: 0 });
  if (o.halt) {
    await c.waitFor(
      on(ticker, () => true),
      15_000,
    );
    o.halt();
  }
  const halted = await c.waitFor(
    on(status, (d) => d.status === 'halted'),
    15_000,
  );
  expect(halted.d).toMatchObject({ status: 'halted', ...o.halted });
  await c.waitFor(
    on(ticker, (d) => d.status === 'halted'),
    15_000,
  );
  const from = c.frames.length;
  o.resume();
  await c.waitFor(
    on(status, (d) => d.status === 'trading' && d.code === o.tradingCode),
    15_000,
    from,
  );
  await c.waitFor(
    on(ticker, (d) => d.status === 'trading'),
    15_000,
    from,
  );
  c.close();
}
