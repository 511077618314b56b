import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient, type ConnectionState, type Update } from '../../src/client/index.js';
import type { Engine } from '../../src/app/engine.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function engineOn(port?: number): Promise<Engine> {
  const e = await startTestEngine(port);
  cleanups.push(() => e.close());
  return e;
}

function clientFor(port: number, extra: Partial<ConstructorParameters<typeof TickwireClient>[0]> = {}): TickwireClient {
  const c = new TickwireClient({ url: streamUrl(port), reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, ...extra });
  cleanups.push(() => c.close());
  return c;
}

describe('client SDK against a real gateway', { timeout: 90_000 }, () => {
  it('connects, gets typed snapshots and live updates in both encodings', async () => {
    const engine = await engineOn();
    for (const encoding of ['msgpack', 'json'] as const) {
      const client = clientFor(engine.port, { encoding });
      const quotes: Update[] = [];
      const bars: number[] = [];
      client.channel('quote:BTC-USD', (q, u) => {
        expect(typeof q.bp).toBe('number');
        expect(q.ap).toBeGreaterThanOrEqual(q.bp!);
        quotes.push(u);
      });
      client.on('bar', (u) => bars.push(u.d.c));
      const welcome = await client.connect();
      expect(welcome.protocol).toBe(1);
      const ack = await client.subscribe(['quote:BTC-USD', 'bar.1s:AAPL'], { throttle: 100 });
      expect(ack.subscribed.sort()).toEqual(['bar.1s:AAPL', 'quote:BTC-USD']);
      expect(ack.rejected).toEqual([]);
      expect(ack.throttle).toBe(100);
      await waitFor(() => quotes.some((u) => u.snapshot) && quotes.some((u) => !u.snapshot) && bars.length > 0, {
        what: `${encoding} quotes and bars`,
        timeout: 20_000,
      });
      expect(quotes[0]!.snapshot).toBe(true);
      expect(quotes[0]!.symbol).toBe('BTC-USD');
      const live = quotes.filter((u) => !u.snapshot).map((u) => u.seq!);
      for (let i = 1; i < live.length; i++) expect(live[i]).toBe(live[i - 1]! + 1);
      await client.close();
      expect(client.state).toBe('closed');
    }
  });

  it('surfaces rejected channels and error replies', async () => {
    const engine = await engineOn();
    const client = clientFor(engine.port);
    const rejectedEvents: string[] = [];
    client.on('rejected', (r) => rejectedEvents.push(`${r.channel}:${r.code}`));
    await client.connect();
    const ack = await client.subscribe(['ticker:AAPL', 'ticker:NOPE', 'weird:AAPL']);
    expect(ack.subscribed).toEqual(['ticker:AAPL']);
    expect(ack.rejected.map((r) => r.channel).sort()).toEqual(['ticker:NOPE', 'weird:AAPL']);
    for (const r of ack.rejected) {
      expect(r.code).toBe('UNKNOWN_CHANNEL');
      expect(r.reason.length).toBeGreaterThan(0);
    }
    expect(rejectedEvents.sort()).toEqual(['ticker:NOPE:UNKNOWN_CHANNEL', 'weird:AAPL:UNKNOWN_CHANNEL']);
    expect(client.subscriptions).toEqual(['ticker:AAPL']); // rejected ones are not retried
    await expect(client.subscribe(['ticker:MSFT'], { throttle: -5 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });

  it('queues subscriptions made before connecting and while reconnecting', async () => {
    const engine = await engineOn();
    const port = engine.port;
    const client = clientFor(port);
    const channels = new Set<string>();
    client.on('data', (u) => channels.add(u.channel));
    const early = client.subscribe(['ticker:TSLA']);
    expect(client.state).toBe('idle');
    await client.connect();
    expect((await early).subscribed).toEqual(['ticker:TSLA']);

    await engine.close();
    await waitFor(() => client.state === 'reconnecting', { what: 'reconnecting', timeout: 20_000 });
    const during = client.subscribe(['quote:SOL-USD'], { throttle: 250 });
    await engineOn(port); // the restarted engine is closed by the cleanups
    const ack = await during;
    expect(ack.subscribed).toEqual(['quote:SOL-USD']);
    expect(ack.throttle).toBe(250);
    channels.clear();
    await waitFor(() => channels.has('ticker:TSLA') && channels.has('quote:SOL-USD'), { what: 'both channels after reconnect', timeout: 20_000 });
  });

  it('sends a replacement token with auth and gets it acknowledged', async () => {
    const engine = await engineOn();
    const client = clientFor(engine.port, { token: () => 'token-' + Date.now() });
    await client.connect();
    await expect(client.refreshAuth()).resolves.toBeUndefined();
  });

  it('measures round-trip latency with ping/pong heartbeats', async () => {
    const engine = await engineOn();
    const client = clientFor(engine.port, { heartbeatIntervalMs: 100 });
    const samples: number[] = [];
    client.on('latency', (l) => {
      expect(l.serverTime).toBeGreaterThan(1e12);
      samples.push(l.rttMs);
    });
    await client.connect();
    const rtt = await client.ping();
    expect(rtt).toBeGreaterThanOrEqual(0);
    await waitFor(() => samples.length >= 3, { what: 'heartbeat pongs', timeout: 20_000 });
    expect(client.latency?.rttMs).toBeGreaterThanOrEqual(0);
  });

  it('stops delivering a channel once unsubscribed', async () => {
    const engine = await engineOn();
    const client = clientFor(engine.port);
    const seen = new Map<string, number>();
    client.on('data', (u) => seen.set(u.channel, (seen.get(u.channel) ?? 0) + 1));
    await client.connect();
    await client.subscribe(['trade:BTC-USD', 'trade:ETH-USD']);
    await waitFor(() => (seen.get('trade:BTC-USD') ?? 0) > 2 && (seen.get('trade:ETH-USD') ?? 0) > 2, { what: 'trades on both', timeout: 20_000 });
    const ack = await client.unsubscribe(['trade:BTC-USD']);
    expect(ack.unsubscribed).toEqual(['trade:BTC-USD']);
    const frozen = seen.get('trade:BTC-USD');
    const eth = seen.get('trade:ETH-USD')!;
    await waitFor(() => seen.get('trade:ETH-USD')! > eth + 3, { what: 'more ETH trades', timeout: 20_000 });
    expect(seen.get('trade:BTC-USD')).toBe(frozen);
    expect(client.subscriptions).toEqual(['trade:ETH-USD']);
  });

  it('reconnects with backoff after the server goes away and resubscribes with snapshots', async () => {
    const engine = await engineOn();
    const port = engine.port;
    const client = clientFor(port);
    const states: ConnectionState[] = [];
    const closes: { code: number; willReconnect: boolean }[] = [];
    const attempts: number[] = [];
    const updates: (Update & { conn: string })[] = [];
    client.on('state', ({ state }) => states.push(state));
    client.on('close', (c) => closes.push(c));
    client.on('reconnecting', (r) => {
      expect(r.delayMs).toBeGreaterThanOrEqual(0);
      expect(r.delayMs).toBeLessThanOrEqual(500);
      attempts.push(r.attempt);
    });
    client.on('data', (u) => updates.push({ ...u, conn: client.welcome!.conn }));
    const first = await client.connect();
    await client.subscribe(['ticker:AAPL', 'quote:EUR-USD'], { throttle: 100 });
    await waitFor(() => updates.filter((u) => !u.snapshot).length > 4, { what: 'live updates before the restart', timeout: 20_000 });

    await engine.close();
    await waitFor(() => closes.length > 0, { what: 'close event', timeout: 20_000 });
    expect(closes[0]).toMatchObject({ code: 1001, willReconnect: true });
    await waitFor(() => attempts.length > 1, { what: 'a few failed attempts while nothing listens', timeout: 20_000 });
    expect(client.state).not.toBe('open');

    await engineOn(port); // the restarted engine is closed by the cleanups
    await waitFor(() => client.state === 'open' && client.welcome!.conn !== first.conn, { what: 'reconnect to the new server', timeout: 20_000 });
    const second = client.welcome!.conn;
    await waitFor(() => ['ticker:AAPL', 'quote:EUR-USD'].every((ch) => updates.some((u) => u.conn === second && u.channel === ch && !u.snapshot)), {
      what: 'live updates on both channels after reconnect',
      timeout: 20_000,
    });
    for (const ch of ['ticker:AAPL', 'quote:EUR-USD']) {
      const after = updates.filter((u) => u.conn === second && u.channel === ch);
      expect(after[0]!.snapshot).toBe(true); // resubscribed with a snapshot first
    }
    expect(client.subscriptions.sort()).toEqual(['quote:EUR-USD', 'ticker:AAPL']);
    expect(states).toContain('reconnecting');
    expect(states.at(-1)).toBe('open');
    // welcomed over WebSocket before: the restart was an outage, not a network refusing upgrades
    expect(client.transport).toBe('websocket');
  });

  it('detects a dead connection by heartbeat and replaces it', async () => {
    const engine = await engineOn();
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = clientFor(engine.port, { WebSocket: filteringWebSocket(tap), heartbeatIntervalMs: 100, heartbeatTimeoutMs: 400 });
    const closes: string[] = [];
    client.on('close', (c) => closes.push(c.reason));
    let n = 0;
    client.on('data', () => n++);
    await client.connect();
    await client.subscribe(['ticker:BTC-USD']);
    await waitFor(() => n > 0, { what: 'first update', timeout: 20_000 });
    // the first socket goes silent: nothing it receives reaches the client any more
    tap.filter = (data, socket) => (socket === 0 ? undefined : data);
    await waitFor(() => tap.sockets.length >= 2 && client.state === 'open', { what: 'a second socket after the heartbeat timeout', timeout: 20_000 });
    expect(closes).toContain('heartbeat timeout');
    const before = n;
    await waitFor(() => n > before + 2, { what: 'updates on the new socket', timeout: 20_000 });
  });

  it('detects a gap by seq, reports it and refreshes the channel with a snapshot', async () => {
    const engine = await engineOn();
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = clientFor(engine.port, { encoding: 'json', WebSocket: filteringWebSocket(tap) });
    const updates: Update[] = [];
    const gaps: { channel: string; expected: number; received: number; missed: number }[] = [];
    let gapAt = -1;
    client.on('data', (u) => {
      if (u.channel === 'trade:BTC-USD') updates.push(u);
    });
    client.on('gap', (g) => {
      gaps.push(g);
      gapAt = updates.length;
    });
    await client.connect();
    await client.subscribe(['trade:BTC-USD', 'ticker:ETH-USD']);
    await waitFor(() => updates.filter((u) => !u.snapshot).length >= 3, { what: 'live trades', timeout: 20_000 });

    // lose exactly one live BTC trade on the wire
    let dropped: number | undefined;
    tap.filter = (data) => {
      if (dropped !== undefined || typeof data !== 'string') return data;
      const frame = JSON.parse(data) as {
        op: string;
        ch?: string;
        seq?: number;
        snapshot?: boolean;
        items?: { ch: string; seq: number; snapshot?: boolean }[];
      };
      const isTarget = (d: { ch?: string; snapshot?: boolean }) => d.ch === 'trade:BTC-USD' && !d.snapshot;
      if (frame.op === 'data' && isTarget(frame)) {
        dropped = frame.seq;
        return undefined;
      }
      if (frame.op === 'batch' && frame.items) {
        const i = frame.items.findIndex(isTarget);
        if (i < 0) return data;
        dropped = frame.items[i]!.seq;
        frame.items.splice(i, 1);
        return JSON.stringify(frame);
      }
      return data;
    };
    await waitFor(() => gaps.length > 0, { what: 'gap event', timeout: 20_000 });
    expect(gaps[0]).toMatchObject({ channel: 'trade:BTC-USD', expected: dropped, missed: 1, received: dropped! + 1 });
    expect(updates.some((u) => u.seq === dropped)).toBe(false);
    await waitFor(() => updates.slice(gapAt).some((u) => u.snapshot), { what: 'a fresh snapshot after the gap', timeout: 20_000 });
    const snapAt = updates.findIndex((u, i) => i >= gapAt && u.snapshot);
    await waitFor(() => updates.length > snapAt + 3, { what: 'live trades after the refresh', timeout: 20_000 });
    const after = updates.slice(snapAt + 1).map((u) => u.seq!);
    for (let i = 1; i < after.length; i++) expect(after[i]).toBe(after[i - 1]! + 1);
    expect(gaps).toHaveLength(1);
    expect(client.state).toBe('open');
  });
});
