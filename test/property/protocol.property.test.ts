import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isValidSubject } from '../../src/bus/bus.js';
import { marketSubject, parseMarketSubject } from '../../src/bus/subjects.js';
import { MARKET_CHANNEL_KINDS } from '../../src/core/schema.js';
import { ProtocolError } from '../../src/core/errors.js';
import { escapeSubjectToken, isCanonicalSymbol, parseSubjectToken, unescapeSubjectToken } from '../../src/core/symbols.js';
import { isPlausibleChannelName } from '../../src/fanout/channels.js';
import { MAX_CHANNELS_PER_REQUEST, parseRequest, throttleTier } from '../../src/protocol/index.js';

/**
 * The request parser and the symbol escaping against any input (unit/symbols.test.ts has the
 * examples and the grapheme round trip; these add arbitrary UTF-16, canonical symbols in full
 * subjects, and the parser).
 */
const PARSER_CODES = new Set(['BAD_REQUEST', 'UNKNOWN_OP', 'LIMIT']);

function parse(frame: unknown): { ok: true; req: ReturnType<typeof parseRequest> } | { ok: false; code: string; message: string } {
  try {
    return { ok: true, req: parseRequest(frame) };
  } catch (err) {
    if (err instanceof ProtocolError && PARSER_CODES.has(err.code)) return { ok: false, code: err.code, message: err.message };
    throw new Error(`parseRequest threw ${String(err)} for ${JSON.stringify(frame)?.slice(0, 200)}`, { cause: err });
  }
}

const anyId = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 80 }), fc.constant(null), fc.boolean(), fc.constant(undefined));
const requestLike = fc.record(
  {
    op: fc.oneof(fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'auth'), fc.string({ maxLength: 40 }), fc.integer(), fc.constant(null)),
    id: anyId,
    channels: fc.oneof(
      fc.array(fc.oneof(fc.string({ maxLength: 30 }), fc.integer(), fc.constant(null)), { maxLength: 8 }),
      fc.string(),
      fc.constant(null),
      fc.constant([]),
    ),
    throttle: fc.oneof(fc.integer({ min: -1000, max: 100_000 }), fc.double(), fc.string({ maxLength: 5 }), fc.constant(null)),
    snapshot: fc.oneof(fc.boolean(), fc.integer(), fc.constant(null)),
    since: fc.oneof(fc.nat(), fc.integer({ min: -5, max: -1 }), fc.double(), fc.string({ maxLength: 5 })),
    token: fc.oneof(fc.string({ maxLength: 40 }), fc.constant(''), fc.integer()),
  },
  { requiredKeys: [] },
);

describe('parseRequest: any decoded frame is a valid request or a protocol error', () => {
  it('never throws anything else, and what it accepts is well formed', () => {
    fc.assert(
      fc.property(fc.oneof(requestLike, fc.jsonValue({ maxDepth: 4 })), (frame) => {
        const r = parse(frame);
        if (!r.ok) {
          expect(r.message.length).toBeGreaterThan(5);
          return;
        }
        const req = r.req;
        expect(['subscribe', 'unsubscribe', 'ping', 'auth']).toContain(req.op);
        if (req.id !== undefined) {
          expect(typeof req.id === 'string' ? req.id.length <= 64 : Number.isFinite(req.id)).toBe(true);
          expect(req.id).toBe((frame as { id: unknown }).id);
        }
        if (req.op === 'subscribe' || req.op === 'unsubscribe') {
          expect(req.channels.length).toBeGreaterThan(0);
          expect(req.channels.length).toBeLessThanOrEqual(MAX_CHANNELS_PER_REQUEST);
          expect(req.channels.every((c) => typeof c === 'string')).toBe(true);
        }
        if (req.op === 'subscribe') {
          expect(Number.isFinite(req.throttle) && req.throttle >= 0).toBe(true);
          expect(typeof req.snapshot).toBe('boolean');
          if (req.since !== undefined) expect(Number.isInteger(req.since) && req.since >= 0).toBe(true);
        }
        if (req.op === 'auth') expect(req.token.length).toBeGreaterThan(0);
      }),
      { numRuns: 20_000 },
    );
  });

  it('an id with a lone surrogate is refused, not echoed altered (frames carry well-formed text)', () => {
    for (const id of ['\ud800', 'a\udc00b', 'x\ud83d']) {
      const r = parse({ op: 'ping', id });
      expect(r.ok, JSON.stringify(id)).toBe(false);
      if (!r.ok) expect(r.message).toMatch(/well-formed Unicode/);
    }
    expect(parse({ op: 'ping', id: 'ok-\ud83d\ude00' })).toMatchObject({ ok: true, req: { id: 'ok-\ud83d\ude00' } });
  });

  it('well-formed subscribes parse to exactly what was sent (defaults: throttle 0, snapshot true)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 50 }),
        fc.option(fc.integer({ min: 0, max: 60_000 }), { nil: undefined }),
        fc.option(fc.boolean(), { nil: undefined }),
        fc.option(fc.oneof(fc.nat(), fc.string({ maxLength: 64 })), { nil: undefined }),
        (channels, throttle, snapshot, id) => {
          const frame: Record<string, unknown> = { op: 'subscribe', channels };
          if (throttle !== undefined) frame.throttle = throttle;
          if (snapshot !== undefined) frame.snapshot = snapshot;
          if (id !== undefined) frame.id = id;
          const r = parse(frame);
          expect(r.ok).toBe(true);
          if (!r.ok || r.req.op !== 'subscribe') return;
          expect(r.req).toEqual({ op: 'subscribe', channels, throttle: throttle ?? 0, snapshot: snapshot ?? true, ...(id !== undefined ? { id } : {}) });
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('more than the channel limit per request is LIMIT; an unknown op is UNKNOWN_OP naming it (cut to 32 characters)', () => {
    const many = Array.from({ length: MAX_CHANNELS_PER_REQUEST + 1 }, (_, i) => `quote:S${i}`);
    expect(parse({ op: 'subscribe', channels: many })).toMatchObject({ ok: false, code: 'LIMIT' });
    fc.assert(
      fc.property(
        fc.string({ maxLength: 200 }).filter((s) => !['subscribe', 'unsubscribe', 'ping', 'auth'].includes(s)),
        (op) => {
          const r = parse({ op });
          expect(r).toMatchObject({ ok: false, code: 'UNKNOWN_OP' });
          if (!r.ok) expect(r.message).toContain(op.slice(0, 32));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('throttleTier returns a configured tier, never below the request or the minimum unless above the top tier', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat({ max: 10_000 }), { minLength: 1, maxLength: 8 }),
        fc.double({ min: 0, max: 20_000, noNaN: true }),
        fc.nat({ max: 5000 }),
        (tiers, req, min) => {
          const t = throttleTier(req, tiers, min);
          expect(tiers).toContain(t);
          const want = Math.max(req, min);
          if (want <= Math.max(...tiers)) {
            expect(t).toBeGreaterThanOrEqual(want);
            // the smallest such tier
            for (const other of tiers) if (other >= want) expect(other).toBeGreaterThanOrEqual(t);
          } else expect(t).toBe(Math.max(...tiers));
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

describe('symbols in subjects', () => {
  it('escaping is reversible for any UTF-16 string (lone surrogates included) and leaves no NATS-special character', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        const token = escapeSubjectToken(s);
        expect(unescapeSubjectToken(token)).toBe(s);
        expect(token).not.toMatch(/[.*>\s]/);
      }),
      { numRuns: 2_000 },
    );
  });

  it('escaping is injective: different symbols never share a subject', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 12 }), fc.string({ unit: 'binary', maxLength: 12 }), (a, b) => {
        if (a !== b) expect(escapeSubjectToken(a)).not.toBe(escapeSubjectToken(b));
      }),
      { numRuns: 5_000 },
    );
  });

  /** what NATS does with a subject: UTF-8 on the wire, decoded again by the subscriber */
  const viaUtf8 = (token: string): string => Buffer.from(token, 'utf8').toString('utf8');
  /** any UTF-16 string, weighted towards the code units that need care */
  const anyString = fc.string({
    unit: fc.oneof(
      fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      fc.constantFrom(
        '\uD800',
        '\uDBFF',
        '\uDC00',
        '\uDFFF',
        '\uFFFD',
        '%',
        '.',
        '*',
        '>',
        ' ',
        '\u0085',
        '\u009b',
        '\u007f',
        '\u0001',
        '\u3000',
        'u',
        'D',
        '8',
        '0',
        '2',
        'E',
        '😀',
      ),
    ),
    maxLength: 16,
  });

  it('escaping of any string (lone surrogates, controls) gives well-formed UTF-8 that survives NATS and round-trips', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const token = escapeSubjectToken(s);
        expect(viaUtf8(token)).toBe(token);
        expect(unescapeSubjectToken(viaUtf8(token))).toBe(s);
        expect(parseSubjectToken(viaUtf8(token))).toBe(s);
        // eslint-disable-next-line no-control-regex -- no control character may survive the escaping
        expect(token).not.toMatch(/[.*>\s\u0000-\u001f\u007f-\u009f]/);
        if (s.length > 0) expect(isValidSubject(`exec.log.${token}`, false)).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });

  it('escaping is injective through UTF-8: different strings never share subject bytes', () => {
    fc.assert(
      fc.property(anyString, anyString, (a, b) => {
        if (a !== b) expect(Buffer.from(escapeSubjectToken(a), 'utf8').equals(Buffer.from(escapeSubjectToken(b), 'utf8'))).toBe(false);
      }),
      { numRuns: 10_000 },
    );
    for (const [a, b] of [
      ['x\uD800', 'x\uDC00'],
      ['x\uD800', 'x\uFFFD'],
      ['x\uDBFF\uDFFF', 'x\uDFFF\uDBFF'],
      ['x\u0085', 'x%85'],
    ]) {
      expect(Buffer.from(escapeSubjectToken(a!), 'utf8').equals(Buffer.from(escapeSubjectToken(b!), 'utf8')), JSON.stringify([a, b])).toBe(false);
    }
  });

  it('ordinary ids and symbols map exactly as before (existing subjects and durable data keep their names)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9@_\-+:/=^~!$&'(),;]{1,40}$/), (s) => {
        expect(escapeSubjectToken(s)).toBe(s);
      }),
      { numRuns: 2_000 },
    );
    const before: [string, string][] = [
      ['BRK.B', 'BRK%2EB'],
      ['a.b', 'a%2Eb'],
      ['a%2Eb', 'a%252Eb'],
      ['A*B>C D', 'A%2AB%3EC%20D'],
      ['a\u00a0b', 'a%A0b'],
      ['A\u3000B', 'A%u3000B'],
      ['😀', '😀'],
      ['é', 'é'],
    ];
    for (const [s, token] of before) expect(escapeSubjectToken(s)).toBe(token);
  });

  it("a token has one reading: only the escaper's own spelling parses", () => {
    expect(parseSubjectToken('a%2Eb')).toBe('a.b');
    for (const t of ['%61', 'a%2eb', 'a%u002E', 'a%uD800%uDC00', 'a%zz']) expect(parseSubjectToken(t), t).toBeUndefined();
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('%', 'u', 'D', '8', '0', '2', 'E', 'a', 'F'), maxLength: 12 }), (t) => {
        const s = parseSubjectToken(t);
        if (s !== undefined) expect(escapeSubjectToken(s)).toBe(t);
      }),
      { numRuns: 5_000 },
    );
  });

  const canonical = fc.stringMatching(/^[A-Z0-9][A-Z0-9.\-_/^=]{0,31}$/);
  it('every canonical symbol makes a valid 4-token literal subject that parses back, for every kind', () => {
    fc.assert(
      fc.property(
        canonical,
        fc.constantFrom(...MARKET_CHANNEL_KINDS),
        fc.constantFrom('stock' as const, 'crypto' as const, 'forex' as const),
        (sym, kind, cls) => {
          expect(isCanonicalSymbol(sym)).toBe(true);
          const subject = marketSubject(cls, kind, sym);
          expect(isValidSubject(subject, false)).toBe(true);
          expect(subject.split('.')).toHaveLength(4);
          expect(parseMarketSubject(subject)).toEqual({ assetClass: cls, kind, symbol: sym });
          expect(isPlausibleChannelName(`${kind}:${sym}`)).toBe(true);
        },
      ),
      { numRuns: 3_000 },
    );
  });

  it('channel names outside 1-128 printable ASCII characters are never plausible', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (name) => {
        const ok = name.length >= 1 && name.length <= 128 && [...name].every((c) => c >= '!' && c <= '~');
        expect(isPlausibleChannelName(name)).toBe(ok);
      }),
      { numRuns: 5_000 },
    );
  });
});
