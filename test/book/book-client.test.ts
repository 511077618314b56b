import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocketServer } from 'ws';
import { TickwireClient } from '../../packages/client/src/index.js';
import type { GapEvent, Update } from '../../packages/client/src/index.js';
import { bookChecksum, LocalBook } from '../../src/protocol/book.js';
import { waitFor } from '../helpers/wait.js';
import { startScriptedGateway, subscribeAck } from '../helpers/scripted-gateway.js';

/**
 * The SDK and order books: `depth` goes out with the subscribe (and with every resubscribe the
 * client makes by itself), a seq gap on a `book:SYM` channel resubscribes and holds the items
 * after the gap back until the new snapshot (a book delta only applies on top of the one before
 * it), and `resync()` asks for a fresh snapshot after a checksum mismatch. A scripted server on
 * a loopback port speaks the gateway's frames.
 */
type Level = [number, number];
const CH = 'book:BTC-USD';
const item = (seq: number, bids: Level[], asks: Level[], view: { bids: Level[]; asks: Level[] }, snapshot = false) => ({
  op: 'data',
  ch: CH,
  seq,
  ...(snapshot ? { snapshot: true } : {}),
  d: { bids, asks, cs: bookChecksum(view.bids, view.asks), ...(snapshot ? { depth: 25 } : {}) },
});

describe('client: book channels', () => {
  let wss: WebSocketServer | undefined;
  let client: TickwireClient | undefined;
  afterEach(async () => {
    await client?.close();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    client = undefined;
    wss = undefined;
  });

  it('sends depth, resubscribes with it after a gap, and delivers nothing between the gap and the snapshot', async () => {
    let subscribes = 0;
    const gateway = await startScriptedGateway((ws, req) => {
      if (req.op === 'unsubscribe') {
        ws.send(JSON.stringify({ op: 'ack', id: req.id, unsubscribed: req.channels }));
        return;
      }
      if (req.op !== 'subscribe') return;
      subscribes++;
      ws.send(JSON.stringify(subscribeAck(req)));
      if (subscribes === 1) {
        const a = { bids: [[100, 1]] as Level[], asks: [[101, 2]] as Level[] };
        const b = { bids: [[100, 3]] as Level[], asks: [[101, 2]] as Level[] };
        const batch = [
          item(5, a.bids, a.asks, a, true),
          item(6, [[100, 3]], [], b),
          // seq 7 lost: 8 and 9 must not reach the app
          item(8, [[99, 1]], [], {
            bids: [
              [100, 3],
              [99, 1],
            ],
            asks: b.asks,
          }),
          item(9, [], [[101, 0]], {
            bids: [
              [100, 3],
              [99, 1],
            ],
            asks: [],
          }),
        ];
        ws.send(JSON.stringify({ op: 'batch', items: batch }));
      } else {
        const c = {
          bids: [
            [100, 3],
            [99, 1],
          ] as Level[],
          asks: [[102, 4]] as Level[],
        };
        ws.send(
          JSON.stringify({ op: 'batch', items: [item(12, c.bids, c.asks, c, true), item(13, [[98, 5]], [], { bids: [...c.bids, [98, 5]], asks: c.asks })] }),
        );
      }
    });
    wss = gateway.wss;
    client = new TickwireClient({ url: `ws://127.0.0.1:${gateway.port}/v1/stream`, encoding: 'json', reconnect: false });
    const book = new LocalBook();
    const seen: number[] = [];
    const failed: number[] = [];
    const gaps: GapEvent[] = [];
    client.on('gap', (g) => gaps.push(g));
    client.on('data', (u: Update) => {
      if (u.channel !== CH) return;
      seen.push(u.seq!);
      if (!book.apply(u)) failed.push(u.seq!);
    });
    await client.connect();
    await client.subscribe([CH], { depth: 25, throttle: 100 });
    await waitFor(() => seen.includes(13));
    expect(seen).toEqual([5, 6, 12, 13]);
    expect(failed).toEqual([]);
    expect(gaps).toEqual([{ channel: CH, expected: 7, received: 8, missed: 1 }]);
    const subs = gateway.frames.filter((f) => f.op === 'subscribe');
    expect(subs).toHaveLength(2);
    for (const f of subs) expect(f).toMatchObject({ channels: [CH], depth: 25, throttle: 100, snapshot: true });
    expect(book.bids()).toEqual([
      [100, 3],
      [99, 1],
      [98, 5],
    ]);
    expect(book.asks()).toEqual([[102, 4]]);
    expect(book.depth).toBe(25);

    // a checksum mismatch in the app: resync() asks for a fresh snapshot with the same depth
    client.resync([CH]);
    await waitFor(() => gateway.frames.filter((f) => f.op === 'subscribe').length === 3);
    expect(gateway.frames.filter((f) => f.op === 'subscribe')[2]).toMatchObject({ channels: [CH], depth: 25, snapshot: true });
  });
});
