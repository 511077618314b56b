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
/**
 * Whether a MessagePack string of `b` holds a surrogate encoded as UTF-8 bytes (CESU-8: ED A0-BF
 * ..), which strict decoders refuse. Only the strings' bytes are looked at: a number's bytes (a
 * receive time, a float) may hold ED A0 by chance, which made a scan of the whole payload fail
 * now and then.
 */
function hasCesuSurrogate(b: Uint8Array): boolean {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = 0;
  let found = false;
  const str = (len: number): void => {
    for (let j = i; j < i + len - 1; j++) if (b[j] === 0xed && b[j + 1]! >= 0xa0 && b[j + 1]! <= 0xbf) found = true;
    i += len;
  };
  const item = (): void => {
    const t = b[i++]!;
    if (t <= 0x7f || t >= 0xe0 || t === 0xc0 || t === 0xc2 || t === 0xc3) return;
    if (t >= 0xa0 && t <= 0xbf) return str(t & 0x1f);
    if (t >= 0x80 && t <= 0x8f) return items(2 * (t & 0x0f));
    if (t >= 0x90 && t <= 0x9f) return items(t & 0x0f);
    const u8 = (): number => b[i++]!;
    const u16 = (): number => ((i += 2), v.getUint16(i - 2));
    const u32 = (): number => ((i += 4), v.getUint32(i - 4));
    switch (t) {
      case 0xd9:
        return str(u8());
      case 0xda:
        return str(u16());
      case 0xdb:
        return str(u32());
      case 0xc4:
        i += u8();
        return;
      case 0xc5:
        i += u16();
        return;
      case 0xc6:
        i += u32();
        return;
      case 0xc7:
        i += u8() + 1;
        return;
      case 0xc8:
        i += u16() + 1;
        return;
      case 0xc9:
        i += u32() + 1;
        return;
      case 0xca:
      case 0xce:
      case 0xd2:
        i += 4;
        return;
      case 0xcb:
      case 0xcf:
      case 0xd3:
        i += 8;
        return;
      case 0xcc:
      case 0xd0:
        i += 1;
        return;
      case 0xcd:
      case 0xd1:
        i += 2;
        return;
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        i += 1 + (1 << (t - 0xd4));
        return;
      case 0xdc:
        return items(u16());
      case 0xdd:
        return items(u32());
      case 0xde:
        return items(2 * u16());
      case 0xdf:
        return items(2 * u32());
      default:
        throw new Error(`not MessagePack: byte 0x${t.toString(16)} at ${i - 1}`);
    }
  };
  const items = (n: number): void => {
    for (let k = 0; k < n; k++) item();
  };
  while (i < b.length) item();
  return found;
}

function strings(t: Tick): string[] {
  return Object.values(t).filter((v): v is string => typeof v === 'string');
}

describe("hasCesuSurrogate (this file's check of bus payloads)", () => {
  it('finds a surrogate in a string, not in the bytes of a number', () => {
    // a float64 whose bytes hold ED A0 (what a receive time or a price can be), and strings
    const float = new Uint8Array([0xcb, 0x40, 0xed, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00]);
    expect(hasCesuSurrogate(float)).toBe(false);
    expect(hasCesuSurrogate(new Uint8Array([0x81, 0xa1, 0x61, 0xa3, 0xed, 0xa0, 0x80]))).toBe(true); // {a: "\uD800" as CESU-8}
    expect(hasCesuSurrogate(new Uint8Array([0x81, 0xa1, 0x61, 0xa4, 0xf0, 0x9f, 0x98, 0x80]))).toBe(false); // {a: "😀"}
  });
});

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
