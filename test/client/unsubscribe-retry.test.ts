import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type TickwireClientError, type Update } from '../../packages/client/src/index.js';
import { spendBurst, startTestEngine, tappedClient, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * An unsubscribe the gateway drops unanswered (over its message rate, docs/protocol.md#limits)
 * or refuses with an `error` frame is sent again, as a subscribe is (after requestTimeoutMs,
 * twice that, up to three sends; docs/client-sdk.md#reconnect). Before: the client stopped
 * delivering the channel while the gateway kept sending it and kept it in the connection's
 * subscription count. A subscribe of the same channel made meanwhile wins: the unsubscribe sent
 * again leaves it out.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  requestTimeoutMs: number,
  limits: Record<string, number> = {},
): Promise<{ client: TickwireClient; tap: Tap; errors: TickwireClientError[]; raw: { socket: number; f: Frame }[] }> {
  const engine = await startTestEngine(undefined, { limits });
  cleanups.push(() => engine.close());
  const { client, tap } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0, requestTimeoutMs });
  const errors: TickwireClientError[] = [];
  client.on('error', (e) => errors.push(e)); // and the gateway's RATE_LIMIT notices
  // every frame the gateway sends, before the client sees it (and whatever tap.rewrite makes of it)
  const raw: { socket: number; f: Frame }[] = [];
  tap.filter = (data, socket) => {
    const f = JSON.parse(String(data)) as Frame;
    raw.push({ socket, f });
    return rewrite ? rewrite(f, data) : data;
  };
  await client.connect();
  return { client, tap, errors, raw };
}

interface Frame {
  op?: string;
  id?: number;
  ch?: string;
  snapshot?: boolean;
  subscribed?: string[];
  unsubscribed?: string[];
  items?: Frame[];
}
/** what the client gets instead of a frame (undefined: lost on the way) */
let rewrite: ((f: Frame, data: unknown) => unknown) | undefined;
afterEach(() => {
  rewrite = undefined;
});

/** Data frames (batch items too) of channel `ch` among `frames`. */
const dataOf = (frames: { socket: number; f: Frame }[], ch: string): Frame[] =>
  frames.flatMap(({ f }) => (f.op === 'batch' ? (f.items ?? []) : [f])).filter((f) => f.ch === ch && f.op !== 'ack');

const BTC = 'ticker:BTC-USD';
const ETH = 'ticker:ETH-USD';

describe('an unsubscribe the gateway did not carry out', { timeout: 30_000 }, () => {
  it('dropped under the rate limit, it is sent again: the gateway stops sending the channel', async () => {
    // 2 frames a second, a burst of 2, and no 4008 close
    const { client, tap, raw } = await setup(400, { messagesPerSec: 2, messageBurst: 2, rateLimitCloseMs: 60_000 });
    await client.subscribe([BTC]);
    await waitFor(() => dataOf(raw, BTC).some((f) => !f.snapshot), { what: 'live BTC-USD tickers', timeout: 10_000 });
    spendBurst(tap, 0, 2); // the unsubscribe is dropped
    const result = await client.unsubscribe([BTC]);
    expect(result.unsubscribed).toEqual([BTC]);
    const ackAt = raw.findIndex(({ f }) => f.op === 'ack' && f.unsubscribed?.includes(BTC));
    expect(ackAt).toBeGreaterThan(0);
    // another channel streams meanwhile: by the time it has, BTC-USD would have come again
    await client.subscribe([ETH]);
    await waitFor(() => dataOf(raw.slice(ackAt), ETH).filter((f) => !f.snapshot).length >= 3, { what: 'live ETH-USD tickers', timeout: 10_000 });
    expect(dataOf(raw.slice(ackAt), BTC)).toEqual([]);
    expect(client.subscriptions).toEqual([ETH]);
  });

  it('refused with an error frame (LIMIT, RATE_LIMIT), it is sent again and resolves with the ack', async () => {
    const { client, raw } = await setup(150);
    await client.subscribe([BTC]);
    // the gateway's first answer to the unsubscribe is a refusal (as while an auth is being verified)
    let refused = 0;
    rewrite = (f, data) => {
      if (f.op === 'ack' && f.unsubscribed && refused++ === 0) return JSON.stringify({ op: 'error', id: f.id, code: 'LIMIT', message: 'wait for the auth' });
      return data;
    };
    const result = await client.unsubscribe([BTC]);
    expect(result.unsubscribed).toEqual([BTC]);
    expect(raw.filter(({ f }) => f.op === 'ack' && f.unsubscribed?.includes(BTC))).toHaveLength(2);
  });

  it('refused with requestTimeoutMs 0 (no timer to send it again): it rejects with the refusal at once', async () => {
    const { client } = await setup(0);
    await client.subscribe([BTC]);
    rewrite = (f, data) => (f.op === 'ack' && f.unsubscribed ? JSON.stringify({ op: 'error', id: f.id, code: 'LIMIT', message: 'wait for the auth' }) : data);
    const err = await client.unsubscribe([BTC]).then(
      () => undefined,
      (e: TickwireClientError) => e,
    );
    expect(err?.code).toBe('LIMIT');
  });

  it('never answered, it rejects with TIMEOUT after three sends, naming its channels', async () => {
    const { client, raw } = await setup(150);
    await client.subscribe([BTC]);
    rewrite = (f, data) => (f.op === 'ack' && f.unsubscribed ? undefined : data); // its acks are lost on the way
    const err = await client.unsubscribe([BTC]).then(
      () => undefined,
      (e: TickwireClientError) => e,
    );
    expect(err?.code).toBe('TIMEOUT');
    expect(err?.channels).toEqual([BTC]);
    expect(raw.filter(({ f }) => f.op === 'ack' && f.unsubscribed?.includes(BTC))).toHaveLength(3);
    expect(client.subscriptions).toEqual([]);
  });

  it('a subscribe of the same channel made while it waits wins: the unsubscribe is not sent again after it', async () => {
    const { client, raw } = await setup(300);
    const got: Update[] = [];
    client.channel(BTC, (_d, u) => got.push(u));
    await client.subscribe([BTC]);
    // the gateway carries out the unsubscribe, but its ack is lost: the client would send it again
    rewrite = (f, data) => (f.op === 'ack' && f.unsubscribed ? undefined : data);
    const unsubscribed = client.unsubscribe([BTC]);
    await client.subscribe([BTC]);
    expect((await unsubscribed).unsubscribed).toEqual([]);
    // past the unsubscribe's last possible resend, the channel still streams
    const at = raw.length;
    await waitFor(() => dataOf(raw.slice(at), BTC).filter((f) => !f.snapshot).length >= 3, { what: 'live BTC-USD tickers', timeout: 10_000 });
    expect(raw.filter(({ f }) => f.op === 'ack' && f.unsubscribed)).toHaveLength(1);
    expect(client.subscriptions).toEqual([BTC]);
    expect(got.some((u) => !u.snapshot)).toBe(true);
  });

  it('waiting when the connection drops, it settles; the new connection does not join the channel', async () => {
    const { client, tap, raw } = await setup(400, { messagesPerSec: 2, messageBurst: 2, rateLimitCloseMs: 60_000 });
    await client.subscribe([BTC, ETH]);
    spendBurst(tap, 0, 2); // the unsubscribe is dropped
    const unsubscribed = client.unsubscribe([BTC]);
    tap.sockets[0]!.terminate();
    expect((await unsubscribed).unsubscribed).toEqual([BTC]);
    await waitFor(
      () =>
        dataOf(
          raw.filter((r) => r.socket === 1),
          ETH,
        ).filter((f) => !f.snapshot).length >= 3,
      {
        what: 'live ETH-USD tickers on the new connection',
        timeout: 10_000,
      },
    );
    expect(
      dataOf(
        raw.filter((r) => r.socket === 1),
        BTC,
      ),
    ).toEqual([]);
    expect(client.subscriptions).toEqual([ETH]);
  });

  it('over 1000 channels, it goes in requests of at most 1000 (the gateway refuses more with LIMIT) and resolves with all of them', async () => {
    const { client, raw } = await setup(200);
    // channels the gateway does not know are rejected at the subscribe; BTC-USD streams
    const many = Array.from({ length: 1499 }, (_, i) => `ticker:S${i}-USD`);
    await client.subscribe(many.slice(0, 999));
    await client.subscribe([...many.slice(999), BTC]);
    await waitFor(() => dataOf(raw, BTC).some((f) => !f.snapshot), { what: 'live BTC-USD tickers', timeout: 10_000 });
    const result = await client.unsubscribe([...many, BTC]);
    expect(result.unsubscribed.sort()).toEqual([...many, BTC].sort());
    const acks = raw.filter(({ f }) => f.op === 'ack' && f.unsubscribed);
    expect(acks.map(({ f }) => f.unsubscribed!.length)).toEqual([1000, 500]);
    const ackAt = raw.indexOf(acks[1]!);
    await client.subscribe([ETH]);
    await waitFor(() => dataOf(raw.slice(ackAt), ETH).filter((f) => !f.snapshot).length >= 3, { what: 'live ETH-USD tickers', timeout: 10_000 });
    expect(dataOf(raw.slice(ackAt), BTC)).toEqual([]);
  });
});
