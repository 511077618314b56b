import { describe, expect, it } from 'vitest';
import type { TestContext } from 'vitest';
import WS from 'ws';
import { TickwireClient } from '../../src/client/index.js';
import type { GapEvent, Update, WebSocketConstructor } from '../../src/client/index.js';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { RawWs } from '../helpers/raw-ws.js';
import { TestClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A client that stops reading its socket (a frozen tab, a paused debugger) while the gateway's
 * buffer for it stays far below high water: the backlog sits in the kernel's socket buffers, so
 * backpressure never fires. The gateway's lag pings find it; when it reads again it gets fresh
 * values after a seq gap, not the quotes of the whole stall.
 */
const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'EUR-USD', 'GBP-USD', 'AAPL', 'MSFT', 'NVDA', 'TSLA'];
const CHANNELS = SYMBOLS.map((s) => `quote:${s}`);
const WATCHED = 'quote:BTC-USD';
// The stall lasts STALL_MS of feed time (lagMs is 500). What the gateway had already sent when it
// found the lag may arrive first (quotes up to IN_FLIGHT_MS after the stall began: lagMs + pingMs
// and generous room for a loaded machine's scheduling); after that, nothing older than FRESH_MS
// before the feed's time at resume. Without the lag check about 340 such quotes arrive.
const STALL_MS = 10_000;
const IN_FLIGHT_MS = 4_000;
const FRESH_MS = 3_000;

type Item = { op: string; ch?: string; seq?: number; d?: { t?: number }; snapshot?: boolean };

// the items read so far, parsed once per frame: re-parsing every frame on each poll would keep
// this process (which also runs the gateway) busy long enough to be measured as read lag itself
const parsed = new WeakMap<RawWs, { frames: number; items: Item[] }>();
function items(ws: RawWs): Item[] {
  let p = parsed.get(ws);
  if (!p) parsed.set(ws, (p = { frames: 0, items: [] }));
  for (; p.frames < ws.frames.length; p.frames++) {
    const f = ws.frames[p.frames]!;
    if (f.opcode !== 1) continue;
    const o = JSON.parse(f.payload.toString()) as Item & { items?: Item[] };
    p.items.push(...(o.op === 'batch' ? o.items! : [o]));
  }
  return p.items;
}

const quotesOf = (list: readonly Item[], ch: string): Item[] => list.filter((f) => f.op === 'data' && f.ch === ch);

async function stats(port: number): Promise<Record<string, any>> {
  return (await (await fetch(`http://127.0.0.1:${port}/v1/stats`)).json()) as Record<string, any>;
}

/** The test's engine, closed when the test ends (tests of this file run at the same time: no engine shared through a hook). */
async function testEngine(ctx: TestContext, config: Parameters<typeof startEngine>[0]): Promise<Engine> {
  const engine = await startEngine(config);
  ctx.onTestFinished(() => engine.close());
  return engine;
}

/** An engine on the synthetic feed whose buffer limits are far above what a stall produces: only read lag pauses a client. */
async function lagEngine(ctx: TestContext, seed: number, rate: number, slow: Partial<Record<'lagMs' | 'lagCloseMs', number>> = {}): Promise<Engine> {
  return testEngine(ctx, {
    host: '127.0.0.1',
    port: 0,
    log: { level: 'silent' },
    synthetic: { seed, rate },
    slow: {
      highWaterBytes: 32 * 1024 * 1024,
      lowWaterBytes: 64 * 1024,
      hardLimitBytes: 64 * 1024 * 1024,
      stuckMs: 60_000,
      checkMs: 20,
      lagMs: 500,
      lagCloseMs: 60_000,
      pingMs: 100,
      ...slow,
    },
  });
}

describe('read lag', () => {
  // The two tests that wait through a 10 s stall of feed time, each on an engine of its own, run at
  // the same time (a concurrent suite, as test/e2e/http-stream.test.ts does with its waits on the
  // clock); the tests after them one after another, as before.
  describe(`stalls of ${STALL_MS / 1000} s`, { concurrent: true }, () => {
    it(
      'a stalled reader is paused on read lag, and after the stall gets fresh values and a seq gap instead of the backlog',
      { timeout: 90_000 },
      async (ctx) => {
        const { expect } = ctx;
        const { port } = await lagEngine(ctx, 7, 3000);
        const reader = await RawWs.connect(port, { protocol: 'tickwire.v1.json', autoPong: true });
        reader.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: CHANNELS, throttle: 0 }));
        // the feed as a client that keeps reading sees it
        const observer = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, { encoding: 'json' });
        await observer.request({ op: 'subscribe', id: 1, channels: [WATCHED], throttle: 0 });
        const feedTime = (): number => Math.max(0, ...quotesOf(observer.frames as Item[], WATCHED).map((q) => q.d?.t ?? 0));

        // reading normally, and answering the gateway's pings
        await reader.waitFor(() => reader.pongsSent >= 3 && quotesOf(items(reader), WATCHED).length >= 20, 20_000);
        reader.pause();
        const before = items(reader).length;
        const stallStart = Math.max(...quotesOf(items(reader), WATCHED).map((q) => q.d!.t!));

        // the reader stalls while the feed moves on STALL_MS
        await observer.waitFor((f) => f.ch === WATCHED && (f.d?.t ?? 0) >= stallStart + STALL_MS, 40_000);
        const resumeFeedTime = feedTime();
        reader.resume();
        // it reads until it holds a quote at least as new as the feed when it resumed
        await reader.waitFor(() => quotesOf(items(reader).slice(before), WATCHED).some((q) => q.d!.t! >= resumeFeedTime), 20_000);

        const after = quotesOf(items(reader).slice(before), WATCHED);
        // what was already on its way when the lag was found (at most about lagMs + pingMs of quotes)
        // may come first; nothing from the middle of the stall does
        const stale = after.filter((q) => q.d!.t! > stallStart + IN_FLIGHT_MS && q.d!.t! < resumeFeedTime - FRESH_MS);
        expect({ staleQuotes: stale.length, afterResume: after.length }).toEqual({ staleQuotes: 0, afterResume: after.length });
        // the first quote newer than the backlog is a fresh one, after a seq gap
        const firstFresh = after.findIndex((q) => q.d!.t! > stallStart + IN_FLIGHT_MS);
        expect(firstFresh).toBeGreaterThanOrEqual(0);
        expect(after[firstFresh]!.d!.t!).toBeGreaterThanOrEqual(resumeFeedTime - FRESH_MS);
        const prevSeq = firstFresh > 0 ? after[firstFresh - 1]!.seq! : quotesOf(items(reader).slice(0, before), WATCHED).at(-1)!.seq!;
        expect(after[firstFresh]!.seq!).toBeGreaterThan(prevSeq + 1);

        // live again afterwards: from the resync on, seq rises by one per update; the only gaps allowed
        // are further pauses, each one a lag episode of its own (a loaded machine can delay this
        // process's reading past lagMs again), never a duplicate or an older value
        await reader.waitFor(() => quotesOf(items(reader).slice(before), WATCHED).length >= after.length + 5, 20_000);
        const live = quotesOf(items(reader).slice(before), WATCHED).slice(firstFresh);
        const steps = live.slice(1).map((q, i) => q.seq! - live[i]!.seq!);
        const s = await stats(port);
        const context = { steps: steps.filter((d) => d !== 1), gateway: s.gateway };
        expect(
          steps.every((d) => d >= 1),
          JSON.stringify(context),
        ).toBe(true);
        expect(steps.filter((d) => d > 1).length, JSON.stringify(context)).toBeLessThanOrEqual(s.gateway.lagEpisodes - 1);

        expect(s.gateway.lagEpisodes).toBeGreaterThanOrEqual(1);
        expect(s.gateway.resyncs).toBeGreaterThanOrEqual(1);
        expect(s.gateway.slowDisconnects).toBe(0);
        reader.destroy();
        observer.close();
      },
    );

    it('the SDK in Node (ws) answers the lag pings by itself, and after a stall gets a gap, a refresh and fresh values', { timeout: 90_000 }, async (ctx) => {
      const { expect } = ctx;
      const { port } = await lagEngine(ctx, 10, 3000);
      // the SDK's own transport in Node (the ws package), with a handle on its TCP socket to stop reading it
      const sockets: WS[] = [];
      class Transport extends WS {
        constructor(url: string, protocols?: string | string[], options?: WS.ClientOptions) {
          super(url, protocols, options);
          sockets.push(this);
        }
      }
      const client = new TickwireClient({
        url: `ws://127.0.0.1:${port}/v1/stream`,
        encoding: 'json',
        WebSocket: Transport as unknown as WebSocketConstructor,
        reconnect: false,
      });
      const updates: Update<{ t: number }>[] = [];
      const gaps: GapEvent[] = [];
      client.on('data', (u) => void (u.channel === WATCHED && updates.push(u as Update<{ t: number }>)));
      client.on('gap', (g) => void gaps.push(g));
      await client.connect();
      await client.subscribe(CHANNELS, { throttle: 0 });
      const observer = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, { encoding: 'json' });
      await observer.request({ op: 'subscribe', id: 1, channels: [WATCHED], throttle: 0 });
      const feedTime = (): number => Math.max(0, ...quotesOf(observer.frames as Item[], WATCHED).map((q) => q.d?.t ?? 0));
      const until = (cond: () => boolean, what: string): Promise<unknown> => waitFor(cond, { what, timeout: 30_000 });
      // reading normally for a while: the gateway's pings were answered by ws
      await until(() => updates.length >= 50 && feedTime() > 0, 'updates');
      const socket = (sockets[0] as unknown as { _socket: import('node:net').Socket })._socket;
      socket.pause();
      const before = updates.length;
      const stallStart = Math.max(...updates.map((u) => u.d.t));
      await observer.waitFor((f) => f.ch === WATCHED && (f.d?.t ?? 0) >= stallStart + STALL_MS, 40_000);
      const resumeFeedTime = feedTime();
      socket.resume();
      await until(() => updates.slice(before).some((u) => u.d.t >= resumeFeedTime), 'a fresh update');

      const after = updates.slice(before);
      expect(after.filter((u) => u.d.t > stallStart + IN_FLIGHT_MS && u.d.t < resumeFeedTime - FRESH_MS).length).toBe(0);
      expect(gaps.some((g) => g.channel === WATCHED)).toBe(true);
      // the SDK refreshes the channel after the gap: a new snapshot follows
      await until(() => updates.slice(before).some((u) => u.snapshot), 'the refresh snapshot');
      expect(client.state).toBe('open');
      expect(sockets.length).toBe(1); // no reconnect
      const s = await stats(port);
      expect(s.gateway.lagEpisodes).toBeGreaterThanOrEqual(1);
      expect(s.gateway.slowDisconnects).toBe(0);
      client.close();
      observer.close();
    });
  });

  it('a reader that stays stalled past slow.lagCloseMs is closed with 4009', { timeout: 60_000 }, async (ctx) => {
    const { port } = await lagEngine(ctx, 8, 1000, { lagMs: 300, lagCloseMs: 1500 });
    const reader = await RawWs.connect(port, { protocol: 'tickwire.v1.json', autoPong: true });
    reader.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: CHANNELS, throttle: 0 }));
    await reader.waitFor(() => reader.pongsSent >= 2 && quotesOf(items(reader), WATCHED).length >= 5, 20_000);
    reader.pause();
    await waitFor(async () => (await stats(port)).gateway.slowDisconnects >= 1, {
      what: 'the 4009 close of the client that stopped reading',
      timeout: 30_000,
      interval: 50,
    });
    reader.resume();
    await reader.waitFor(() => reader.closeFrame() !== undefined || reader.ended, 20_000);
    expect(reader.closeFrame()?.code).toBe(4009);
    expect((await stats(port)).gateway.lagEpisodes).toBe(1);
    reader.destroy();
  });

  it('a client whose stack never answers pings is not held to the lag limits', { timeout: 60_000 }, async (ctx) => {
    const engine = await testEngine(ctx, {
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      synthetic: { seed: 9, rate: 1000 },
      slow: { checkMs: 20, lagMs: 200, lagCloseMs: 400, pingMs: 50 },
    });
    const port = engine.port;
    const quiet = await RawWs.connect(port, { protocol: 'tickwire.v1.json' });
    quiet.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: CHANNELS, throttle: 0 }));
    // pinged and never answering: still served long after lagCloseMs
    await quiet.waitFor(
      () => quiet.frames.some((f) => f.opcode === 0x9 && f.payload.toString().startsWith('tw')) && quotesOf(items(quiet), WATCHED).length > 0,
      20_000,
    );
    const n = quotesOf(items(quiet), WATCHED).length;
    const since = quotesOf(items(quiet), WATCHED).at(-1)!.d!.t!;
    await quiet.waitFor(() => quotesOf(items(quiet), WATCHED).some((q) => q.d!.t! > since + 2000), 20_000);
    expect(quotesOf(items(quiet), WATCHED).length).toBeGreaterThan(n + 5);
    const s = await stats(port);
    expect(s.gateway.lagEpisodes).toBe(0);
    expect(s.gateway.slowDisconnects).toBe(0);
    expect(quiet.ended).toBe(false);
    quiet.destroy();
  });
});
