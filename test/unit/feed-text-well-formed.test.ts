import { describe, expect, it } from 'vitest';
import type { FeedAdapter, FeedContext, TickInput } from '../../feeds/sdk/adapter.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { wellFormedProblem } from '../../src/core/identity.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { FeedHealthTracker } from '../../feeds/sdk/health.js';
import { decodeBusMessage, decodeTick, encodeBusMessage } from '../../src/codec/tick-codec.js';
import { FeedHost } from '../../src/ingest/feed-host.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { repairText } from '../../src/ingest/well-formed-tick.js';

/**
 * Strings that adapters copy from provider payloads (trade ids, venues, status codes and reasons)
 * were published as they came. JSON allows "\ud800", so a provider could hand the engine a lone
 * surrogate: it has no UTF-8 form, and MessagePack clients got bytes a strict decoder refuses.
 * The ingest path repairs such text once, for every adapter, and reports it in feed health.
 */
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const ts = 1_718_000_000_000_000_000n;

/** An adapter that emits the given ticks when started: the host and publisher are the real ones. */
function adapterEmitting(ticks: TickInput[]): FeedAdapter {
  return {
    id: 'prov',
    async start(ctx: FeedContext) {
      for (const t of ticks) ctx.emit(t);
    },
    async subscribe() {},
    async unsubscribe() {},
    async stop() {},
  };
}

/** CESU-8 encoding of a surrogate (ED A0..BF xx): what msgpackr writes for a lone one; never valid UTF-8. */
function hasCesuSurrogate(b: Uint8Array): boolean {
  for (let i = 0; i < b.length - 1; i++) if (b[i] === 0xed && b[i + 1]! >= 0xa0 && b[i + 1]! <= 0xbf) return true;
  return false;
}

function strings(t: Tick): string[] {
  return Object.values(t).filter((v): v is string => typeof v === 'string');
}

describe('provider text is well-formed Unicode when it leaves the ingest path', () => {
  it('trade ids, venues, correction refs and status reasons with lone surrogates are repaired; the ticks are kept', async () => {
    const bus = new MemoryBus();
    const payloads: Uint8Array[] = [];
    bus.subscribe('md.>', (_s, p) => payloads.push(p));
    const published: Tick[] = [];
    const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, onPublished: (t) => published.push(t) });
    const host = new FeedHost(publisher, silent);
    await host.start(
      adapterEmitting([
        { k: 'trade', sym: 'AAPL', id: 'V:12\uD800', p: 190.5, s: 100, venue: 'V\uDC00', ts },
        { k: 'trade', sym: 'AAPL', id: 'V:13', p: 190.6, s: 10, ts: ts + 1n },
        { k: 'correction', sym: 'AAPL', ref: 'V:12\uD800', id: 'V:14\uDBFF', p: 190.4, s: 100, ts: ts + 2n },
        { k: 'status', sym: 'AAPL', status: 'halted', code: 'H\uD83D', reason: 'Trading Halt \uD83D: News Pending', ts: ts + 3n },
        { k: 'trade', sym: 'AAPL', id: 'emoji \uD83D\uDE00 is fine', p: 190.7, s: 1, ts: ts + 4n },
      ]),
    );
    const trades = published.filter((t): t is Tick & { k: 'trade' } => t.k === 'trade');
    expect(trades.map((t) => t.id)).toEqual(['V:12\uFFFD', 'V:13', 'emoji \uD83D\uDE00 is fine']);
    expect(trades[0]!.venue).toBe('V\uFFFD');
    // the correction still names the trade it amends the way the trade was published
    const corr = published.find((t) => t.k === 'correction') as Tick & { k: 'correction'; ref: string; id: string; applied?: boolean };
    expect(corr.ref).toBe('V:12\uFFFD');
    expect(corr.id).toBe('V:14\uFFFD');
    expect(corr.applied).toBe(true);
    const status = published.find((t) => t.k === 'status') as Tick & { k: 'status'; code: string; reason: string };
    expect(status.code).toBe('H\uFFFD');
    expect(status.reason).toBe('Trading Halt \uFFFD: News Pending');
    for (const t of published) for (const s of strings(t)) expect(wellFormedProblem(s), s).toBeUndefined();
    // the bus payloads (what gateways forward, and what MessagePack clients decode) are valid UTF-8
    expect(payloads.length).toBeGreaterThan(0);
    for (const p of payloads) {
      expect(hasCesuSurrogate(p)).toBe(false);
      for (const s of strings(decodeTick(p))) expect(wellFormedProblem(s)).toBeUndefined();
    }
    // reported: counted in the feed's errors with the field named, and in the publisher's stats
    const health = host.health()[0]!;
    expect(health.errors).toBe(3);
    expect(health.lastError).toMatch(/status "AAPL": field "code" is not well-formed Unicode: lone surrogate U\+D83D/);
    expect(publisher.stats.repairedText).toBe(3);
    await host.stopAll();
    publisher.close();
  });

  it('repairText leaves well-formed ticks alone (no copy) and names the first bad field', () => {
    const ok: TickInput = { k: 'trade', sym: 'BTC-USD', id: '123', p: 1, s: 1, side: 'buy', ts };
    expect(repairText(ok)).toBeUndefined();
    const pair: TickInput = { k: 'status', sym: 'BTC-USD', status: 'halted', reason: 'closed \uD83D\uDE00', ts };
    expect(repairText(pair)).toBeUndefined();
    const r = repairText({ k: 'trade', sym: 'BTC-USD', id: '\uDC00\uD800', p: 1, s: 1, ts })!;
    expect((r.tick as { id: string }).id).toBe('\uFFFD\uFFFD');
    expect(r.detail).toBe('trade "BTC-USD": field "id" is not well-formed Unicode: lone surrogate U+DC00 at index 0; sent with U+FFFD in its place');
  });

  it('feed health quotes provider messages (state detail, lastError) as well-formed text, even when cut at 500', () => {
    const h = new FeedHealthTracker('prov');
    h.setState('error', 'provider error 406 "connection limit \uD800 exceeded"');
    h.error('x'.repeat(499) + '\uD83D\uDE00 and more'); // the cut at 500 falls between the halves of the emoji
    let snap = h.snapshot();
    expect(snap.detail).toBe('provider error 406 "connection limit \uFFFD exceeded"');
    expect(snap.lastError).toBe('x'.repeat(499));
    h.error('bad \uDC00 message');
    snap = h.snapshot();
    expect(snap.lastError).toBe('bad \uFFFD message');
    // published on the bus as MessagePack (gateways serve it at /v1/feeds): valid UTF-8
    const bytes = encodeBusMessage(snap);
    expect(hasCesuSurrogate(bytes)).toBe(false);
    expect(decodeBusMessage<typeof snap>(bytes).detail).toBe(snap.detail);
  });
});
