import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocketServer } from 'ws';
import { TickwireClient } from '../../src/client/index.js';
import type { GapEvent, Status, TradeCancel, TradeCorrection, Update } from '../../src/client/index.js';
import { startGatewaySending } from '../helpers/scripted-gateway.js';

/**
 * The SDK and the item kinds added to protocol v1: `correction` and `cancel` items on a trade
 * channel arrive as their own events (never as trades), an item op it does not know is skipped
 * without a false gap, and `status:SYM` is typed. A scripted server on a loopback port speaks
 * the frames the gateway sends.
 */
describe('client: trade corrections, cancels, unknown item kinds, status', () => {
  let wss: WebSocketServer | undefined;
  let client: TickwireClient | undefined;
  afterEach(async () => {
    await client?.close();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    client = undefined;
    wss = undefined;
  });

  it('delivers data, correction and cancel items apart, skips unknown ops, and keeps seq gap-free', async () => {
    const t = 1_718_026_201_000;
    const gateway = await startGatewaySending([
      {
        op: 'batch',
        items: [
          { op: 'data', ch: 'trade:AAPL', seq: 1, d: { id: '11', p: 100, s: 1, t, src: 'alpaca' } },
          { op: 'data', ch: 'trade:AAPL', seq: 2, d: { id: '12', p: 105, s: 10, t, src: 'alpaca' } },
          { op: 'correction', ch: 'trade:AAPL', seq: 3, d: { ref: '11', id: '14', p: 102, s: 20, t, src: 'alpaca', applied: true } },
          { op: 'future-kind', ch: 'trade:AAPL', seq: 4, d: { whatever: true } },
          { op: 'cancel', ch: 'trade:AAPL', seq: 5, d: { ref: '12', t, src: 'alpaca', applied: true } },
          { op: 'data', ch: 'trade:AAPL', seq: 6, d: { id: '15', p: 101, s: 1, t, src: 'alpaca' } },
        ],
      },
      {
        op: 'data',
        ch: 'status:AAPL',
        seq: 1,
        d: { status: 'halted', code: 'H', reason: 'Trading Halt', luld: { up: 110, down: 90 }, t, src: 'alpaca' },
      },
      // a lone correction item outside a batch is delivered the same way
      { op: 'correction', ch: 'trade:AAPL', seq: 7, d: { ref: '15', id: '16', p: 101.5, s: 1, t, src: 'alpaca', applied: false } },
    ]);
    wss = gateway.wss;
    client = new TickwireClient({ url: `ws://127.0.0.1:${gateway.port}/v1/stream`, encoding: 'json', reconnect: false });
    const trades: string[] = [];
    const data: string[] = [];
    const corrections: TradeCorrection[] = [];
    const cancels: TradeCancel[] = [];
    const statuses: Status[] = [];
    const gaps: GapEvent[] = [];
    const ops: (string | undefined)[] = [];
    client.channel('trade:AAPL', (d) => trades.push(d.id));
    client.on('data', (u: Update) => data.push(u.channel));
    client.on('correction', (u) => {
      corrections.push(u.d);
      ops.push(u.op);
    });
    client.on('cancel', (u) => cancels.push(u.d));
    client.channel('status:AAPL', (d) => statuses.push(d));
    client.on('gap', (g) => gaps.push(g));
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no second correction')), 5000);
      client!.on('correction', () => {
        if (corrections.length === 2) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    await client.connect();
    await client.subscribe(['trade:AAPL', 'status:AAPL']);
    await done;
    expect(trades).toEqual(['11', '12', '15']);
    expect(data.filter((c) => c === 'trade:AAPL')).toHaveLength(3);
    expect(corrections.map((c) => [c.ref, c.id, c.p, c.applied])).toEqual([
      ['11', '14', 102, true],
      ['15', '16', 101.5, false],
    ]);
    expect(ops).toEqual(['correction', 'correction']);
    expect(cancels).toEqual([{ ref: '12', t: 1_718_026_201_000, src: 'alpaca', applied: true }]);
    expect(statuses).toEqual([{ status: 'halted', code: 'H', reason: 'Trading Halt', luld: { up: 110, down: 90 }, t: 1_718_026_201_000, src: 'alpaca' }]);
    expect(gaps).toEqual([]);
  });
});
