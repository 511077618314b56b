import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient } from '../../packages/client/src/index.js';
import { spendBurst, startTestEngine, tappedClient, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A `visibility` frame (setVisible, setPageVisible, the welcome's hidden-page frame) the gateway
 * drops unanswered (over its message rate, docs/protocol.md#limits) or refuses with RATE_LIMIT
 * and its id is sent again, as subscribes and unsubscribes are (after requestTimeoutMs, twice
 * that, up to three sends; docs/client-sdk.md#visibility), pruned first against what the
 * application wants now: a later setVisible / setPageVisible wins. Before: never sent again, the
 * channels stayed paused (or not) on the gateway until the next reconnect.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Frame {
  op?: string;
  id?: number;
  ch?: string;
  code?: string;
  snapshot?: boolean;
  page?: string;
  visible?: boolean;
  channels?: string[];
  updated?: string[];
  items?: Frame[];
}

/** what the client gets instead of a gateway frame (undefined: lost on the way) */
let rewrite: ((f: Frame, data: unknown) => unknown) | undefined;
afterEach(() => {
  rewrite = undefined;
});

/** 2 frames a second, a burst of 2, no 4008 close: a frame after spendBurst(tap, i, 2) is dropped */
const SLOW = { messagesPerSec: 2, messageBurst: 2, rateLimitCloseMs: 60_000 };

async function setup(
  requestTimeoutMs: number,
  limits: Record<string, number> = {},
  before?: (c: TickwireClient) => unknown,
): Promise<{ client: TickwireClient; tap: Tap; raw: Frame[]; sent: Frame[] }> {
  const engine = await startTestEngine(undefined, { limits });
  cleanups.push(() => engine.close());
  const { client, tap } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0, requestTimeoutMs });
  client.on('error', () => undefined); // the gateway's RATE_LIMIT notices
  const raw: Frame[] = [];
  tap.filter = (data) => {
    const f = JSON.parse(String(data)) as Frame;
    raw.push(f);
    return rewrite ? rewrite(f, data) : data;
  };
  // every frame the client sends (JSON), from the first connection's first one
  const sent: Frame[] = [];
  const origPush = tap.sockets.push.bind(tap.sockets);
  tap.sockets.push = (...ss) => {
    for (const s of ss) {
      const send = s.send.bind(s);
      s.send = (d) => {
        sent.push(JSON.parse(String(d)) as Frame);
        send(d);
      };
    }
    return origPush(...ss);
  };
  await before?.(client);
  await client.connect();
  return { client, tap, raw, sent };
}

const dataOf = (frames: Frame[], ch: string): Frame[] =>
  frames.flatMap((f) => (f.op === 'batch' ? (f.items ?? []) : [f])).filter((f) => f.ch === ch && f.op !== 'ack');
const visibilityAcks = (raw: Frame[]): Frame[] => raw.filter((f) => f.op === 'ack' && (f.updated !== undefined || f.page !== undefined));

const BTC = 'ticker:BTC-USD';
const ETH = 'ticker:ETH-USD';

describe('a visibility frame the gateway did not carry out', { timeout: 30_000 }, () => {
  it('setPageVisible(false) dropped under the rate limit is sent again: the channels pause', async () => {
    const { client, tap, raw, sent } = await setup(400, SLOW);
    await client.subscribe([BTC]);
    await waitFor(() => dataOf(raw, BTC).some((f) => !f.snapshot), { what: 'live BTC-USD tickers', timeout: 10_000 });
    spendBurst(tap, 0, 2); // the visibility frame is dropped
    await client.setPageVisible(false);
    expect(sent.filter((f) => f.op === 'visibility' && f.page === 'hidden').length).toBeGreaterThanOrEqual(2);
    const ackAt = raw.findIndex((f) => f.op === 'ack' && f.page === 'hidden');
    expect(ackAt).toBeGreaterThan(0);
    // paused: BTC-USD no longer comes, while a trade channel (not paused) keeps flowing
    await client.subscribe(['trade:ETH-USD']);
    await waitFor(() => dataOf(raw.slice(ackAt), 'trade:ETH-USD').filter((f) => !f.snapshot).length >= 3, { what: 'live ETH-USD trades', timeout: 15_000 });
    expect(dataOf(raw.slice(ackAt), BTC)).toEqual([]);
  });

  it('setVisible(false) dropped under the rate limit is sent again and acked', async () => {
    const { client, tap, raw, sent } = await setup(400, SLOW);
    await client.subscribe([BTC, ETH]);
    await waitFor(() => dataOf(raw, BTC).some((f) => !f.snapshot), { what: 'live BTC-USD tickers', timeout: 10_000 });
    spendBurst(tap, 0, 2);
    await client.setVisible([BTC], false);
    const frames = sent.filter((f) => f.op === 'visibility' && f.visible === false);
    expect(frames.length).toBeGreaterThanOrEqual(2);
    expect(new Set(frames.map((f) => f.id)).size).toBe(1); // the same request, sent again
    expect(visibilityAcks(raw).map((f) => f.updated)).toEqual([[BTC]]);
  });

  it('a later setVisible(true) wins: the dropped setVisible(false) is not sent again after it', async () => {
    const { client, tap, raw, sent } = await setup(1500, SLOW);
    await client.subscribe([BTC]);
    await waitFor(() => dataOf(raw, BTC).some((f) => !f.snapshot), { what: 'live BTC-USD tickers', timeout: 10_000 });
    spendBurst(tap, 0, 2);
    const hidden = client.setVisible([BTC], false); // dropped
    // once the rate has room again (before the resend at 600 ms), shown again: sent and acked
    await waitFor(() => raw.some((f) => f.op === 'error' && f.code === 'RATE_LIMIT'), 'the RATE_LIMIT notice');
    // one frame of the rate refilled (500 ms), well before the resend at 1500 ms (a loaded CI
    // runner once took longer than the 150 ms a 600 ms wait left)
    await new Promise((r) => setTimeout(r, 600));
    await client.setVisible([BTC], true);
    await hidden; // resolves without a resend: nothing left to send
    expect(sent.filter((f) => f.op === 'visibility' && f.visible === false)).toHaveLength(1);
    expect(visibilityAcks(raw)).toHaveLength(1);
    // past every possible resend (1500 + 3000 ms from the first send), still only the one setVisible(false) went out
    await new Promise((r) => setTimeout(r, 4000)); // asserting that nothing happens for a while
    expect(sent.filter((f) => f.op === 'visibility' && f.visible === false)).toHaveLength(1);
  });

  it('a later setPageVisible(true) wins over a dropped setPageVisible(false)', async () => {
    const { client, tap, raw, sent } = await setup(1500, SLOW);
    await client.subscribe([BTC]);
    await waitFor(() => dataOf(raw, BTC).some((f) => !f.snapshot), { what: 'live BTC-USD tickers', timeout: 10_000 });
    spendBurst(tap, 0, 2);
    const hidden = client.setPageVisible(false); // dropped
    await waitFor(() => raw.some((f) => f.op === 'error' && f.code === 'RATE_LIMIT'), 'the RATE_LIMIT notice');
    // one frame of the rate refilled (500 ms), well before the resend at 1500 ms (a loaded CI
    // runner once took longer than the 150 ms a 600 ms wait left)
    await new Promise((r) => setTimeout(r, 600));
    await client.setPageVisible(true);
    await hidden;
    await new Promise((r) => setTimeout(r, 4000)); // asserting that nothing happens for a while (past 1500 + 3000 ms)
    expect(sent.filter((f) => f.op === 'visibility' && f.page === 'hidden')).toHaveLength(1);
    expect(raw.filter((f) => f.op === 'ack' && f.page === 'hidden')).toEqual([]);
  });

  it('refused with RATE_LIMIT and its id, it is sent again and resolves', async () => {
    const { client, raw, sent } = await setup(200);
    await client.subscribe([BTC, ETH]);
    let refused = 0;
    rewrite = (f, data) =>
      f.op === 'ack' && f.updated && refused++ === 0 ? JSON.stringify({ op: 'error', id: f.id, code: 'RATE_LIMIT', message: 'over the message rate' }) : data;
    await client.setVisible([BTC, ETH], false);
    expect(sent.filter((f) => f.op === 'visibility')).toHaveLength(2);
    expect(visibilityAcks(raw)).toHaveLength(2);
  });

  it("the welcome's hidden-page frame, its ack lost, is sent again", async () => {
    let pageAcks = 0;
    rewrite = (f, data) => (f.op === 'ack' && f.page === 'hidden' && pageAcks++ === 0 ? undefined : data); // the first one lost on the way
    const { raw, sent } = await setup(200, {}, (c) => c.setPageVisible(false)); // hidden before connect()
    await waitFor(() => raw.filter((f) => f.op === 'ack' && f.page === 'hidden').length >= 2, 'the hidden-page frame acked twice');
    expect(sent.filter((f) => f.op === 'visibility' && f.page === 'hidden').length).toBeGreaterThanOrEqual(2);
  });
});
