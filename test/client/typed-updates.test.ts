import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import type { WebSocketServer } from 'ws';
import type { ChannelSnapshot } from '@tickwire/react';
import { useBars, useBook, useChannelSnapshot, useTicker, useTrades } from '@tickwire/react';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type BookPayload, type Execution, type Notification, type Quote, type Trade } from '../../packages/client/src/index.js';
import { startGatewaySending } from '../helpers/scripted-gateway.js';

/**
 * What a dashboard team writes first, typed as it reads: `client.on('data')` hands a union
 * discriminated by `kind` (`if (u.kind === 'quote') u.d.bp`), and `useChannelSnapshot(name)`
 * is typed from the channel's name, as `useChannel(name)` is. Before, `u.d` was `unknown` in
 * the one and `value` `unknown` in the other (`npm run typecheck` failed on this file). Options
 * with a default take `undefined` (a prop passed through), also under `exactOptionalPropertyTypes`
 * (as this repository compiles): before, `{ throttle: props.throttle }` did not compile. A
 * scripted server on a loopback port sends the frames the gateway sends.
 */

/** A component's props, passed on to the client and the hooks as they are. */
const props: { throttle?: number | undefined; visible?: boolean | undefined; limit?: number | undefined; depth?: number | undefined } = {};
describe('typed updates', () => {
  let wss: WebSocketServer | undefined;
  let client: TickwireClient | undefined;
  afterEach(async () => {
    await client?.close();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    client = undefined;
    wss = undefined;
  });

  it("the `data` event narrows by kind: a quote's fields, a trade's, a notification's", async () => {
    const t = 1_718_026_201_000;
    const gateway = await startGatewaySending([
      {
        op: 'batch',
        items: [
          { op: 'data', ch: 'quote:AAPL', seq: 1, d: { bp: 100.5, bs: 3, ap: 100.7, as: 2, t, src: 'alpaca' } },
          { op: 'data', ch: 'trade:AAPL', seq: 1, d: { id: '11', p: 100.6, s: 5, t, src: 'alpaca' } },
        ],
      },
    ]);
    wss = gateway.wss;
    client = new TickwireClient({ url: `ws://127.0.0.1:${gateway.port}/v1/stream`, encoding: 'json', reconnect: false, heartbeatIntervalMs: 0 });
    const seen: string[] = [];
    client.on('data', (u) => {
      if (u.kind === 'quote') {
        expectTypeOf(u.d).toEqualTypeOf<Quote>();
        seen.push(`bid ${u.d.bp} ask ${u.d.ap}`);
      } else if (u.kind === 'trade') {
        expectTypeOf(u.d).toEqualTypeOf<Trade>();
        seen.push(`trade ${u.d.s} @ ${u.d.p}`);
      } else if (u.kind === 'notifications') {
        expectTypeOf(u.d).toEqualTypeOf<Notification>();
        if (u.d.kind === 'notification') seen.push(u.d.title);
      } else if (u.kind === 'book') {
        expectTypeOf(u.d).toEqualTypeOf<BookPayload>();
      } else if (u.kind === 'bar.1m') {
        expectTypeOf(u.d.c).toEqualTypeOf<number>();
      }
    });
    await client.connect();
    await client.subscribe(['quote:AAPL', 'trade:AAPL'], { throttle: props.throttle, visible: props.visible, depth: props.depth });
    await expect.poll(() => seen).toEqual(['bid 100.5 ask 100.7', 'trade 5 @ 100.6']);
  });

  it('useChannelSnapshot is typed from the channel name, or by the type given', () => {
    // (hooks run inside a provider: here only their types are checked, by tsc)
    const fromName = (): ChannelSnapshot<Quote> => useChannelSnapshot('quote:AAPL');
    expectTypeOf(fromName).returns.toEqualTypeOf<ChannelSnapshot<Quote>>();
    expectTypeOf(() => useChannelSnapshot('executions').items).returns.toEqualTypeOf<readonly Execution[]>();
    expectTypeOf(() => useChannelSnapshot<Trade>('trade:' + 'AAPL').value).returns.toEqualTypeOf<Trade | undefined>();
    expect(typeof fromName).toBe('function');
  });

  it('hook options take undefined where they have a default', () => {
    const row = () => [
      useTicker('AAPL', { throttle: props.throttle, visible: props.visible }),
      useTrades('AAPL', { limit: props.limit, throttle: props.throttle }),
      useBars('AAPL', '1m', { limit: props.limit, history: props.limit }),
      useBook('BTC-USD', { depth: props.depth }),
    ];
    expectTypeOf(row).returns.items.not.toBeAny();
  });
});
