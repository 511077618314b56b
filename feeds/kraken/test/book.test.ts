import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bookChecksum, checksumField, crc32, KrakenBook, parseBookData, rawBookNumbers } from '../book.js';
import type { BookPrecision, Level } from '../book.js';

const EXAMPLE = JSON.parse(readFileSync(new URL('../fixtures/book-checksum-example.json', import.meta.url), 'utf8')) as {
  precision: BookPrecision;
  frame: { data: Record<string, unknown>[] };
};
const P: BookPrecision = { price: 1, qty: 8 };

describe('kraken book checksum', () => {
  it('is the standard CRC-32 (check value of "123456789")', () => {
    expect(crc32('123456789')).toBe(0xcbf43926);
    expect(crc32('')).toBe(0);
  });

  it('formats fields as the guide shows: decimal point removed, leading zeros stripped', () => {
    expect(checksumField(45285.2, 1)).toBe('452852');
    expect(checksumField(0.001, 8)).toBe('100000');
    expect(checksumField(0.1, 8)).toBe('10000000');
    expect(checksumField(45281, 1)).toBe('452810'); // trailing zeros of the precision are kept
    expect(checksumField(0.5666, 4)).toBe('5666');
  });

  it("reproduces the guide's example checksum (3310070434) for its BTC/USD snapshot", () => {
    const data = parseBookData(EXAMPLE.frame.data[0]!);
    expect(data.checksum).toBe(3310070434);
    expect(bookChecksum(data.bids, data.asks, EXAMPLE.precision)).toBe(3310070434);
    const book = new KrakenBook(10);
    book.snapshot(data.bids, data.asks);
    expect(book.checksum(EXAMPLE.precision)).toBe(3310070434);
    // any change in the top 10 changes it
    book.update([[45283.5, 0.2]], []);
    expect(book.checksum(EXAMPLE.precision)).not.toBe(3310070434);
  });

  it('uses the digits Kraken sent, so values a double cannot hold still give the right checksum', () => {
    // 20 significant digits: the nearest double formats as 250000000000.12344360
    const big = Number('250000000000.12345678');
    expect(checksumField(big, 8)).not.toBe('25000000000012345678');
    expect(checksumField(big, 8, '250000000000.12345678')).toBe('25000000000012345678');
    expect(checksumField(0.001, 8, '0.001')).toBe('100000'); // padded to the precision
    expect(checksumField(45281, 1, '45281')).toBe('452810');
    expect(checksumField(1e-8, 8, '1e-8')).toBe('1'); // not plain digits: the number is formatted
    const text = JSON.stringify({
      channel: 'book',
      type: 'snapshot',
      data: [{ symbol: 'SHIB/USD', bids: [{ price: 0.00002344, qty: 1 }], asks: [{ price: 0.00002345, qty: 0 }], checksum: 0 }],
    }).replace('"qty":1}', '"qty":250000000000.12345678}');
    const data = parseBookData((JSON.parse(rawBookNumbers(text)) as { data: Record<string, unknown>[] }).data[0]!);
    expect(data.bids).toEqual([[0.00002344, big]]);
    const book = new KrakenBook(10);
    book.snapshot(data.bids, data.asks, data.text);
    expect(book.checksum({ price: 8, qty: 8 })).toBe(crc32('2344' + '25000000000012345678'));
    // the documented example read the same way still gives the documented checksum
    const doc = parseBookData((JSON.parse(rawBookNumbers(JSON.stringify(EXAMPLE.frame))) as { data: Record<string, unknown>[] }).data[0]!);
    const b2 = new KrakenBook(10);
    b2.snapshot(doc.bids, doc.asks, doc.text);
    expect(b2.checksum(EXAMPLE.precision)).toBe(3310070434);
  });

  it('only the top 10 levels count, whatever the depth', () => {
    const bids: Level[] = Array.from({ length: 25 }, (_, i) => [Number((99.9 - i * 0.1).toFixed(1)), 1 + i]);
    const asks: Level[] = Array.from({ length: 25 }, (_, i) => [Number((100 + i * 0.1).toFixed(1)), 1 + i]);
    const book = new KrakenBook(25);
    book.snapshot(bids, asks);
    const before = book.checksum(P);
    expect(before).toBe(bookChecksum(bids.slice(0, 10), asks.slice(0, 10), P));
    book.update([[bids[20]![0], 7]], []);
    expect(book.checksum(P)).toBe(before);
  });
});

describe('kraken book maintenance', () => {
  const snap = (depth: number) => {
    const book = new KrakenBook(depth);
    const out = book.snapshot(
      [
        [99.8, 2],
        [99.9, 1],
        [99.7, 3],
      ],
      [
        [100.1, 5],
        [100.0, 4],
      ],
    );
    return { book, out };
  };

  it('a snapshot gives the whole book best first', () => {
    const { out } = snap(10);
    expect(out.bids).toEqual([
      [99.9, 1],
      [99.8, 2],
      [99.7, 3],
    ]);
    expect(out.asks).toEqual([
      [100.0, 4],
      [100.1, 5],
    ]);
  });

  it('applies updates in order (the last size of a price wins) and removes a level at qty 0', () => {
    const { book } = snap(10);
    const changed = book.update(
      [
        [99.9, 1.5],
        [99.9, 1.25],
        [99.7, 0],
      ],
      [[100.2, 6]],
    );
    expect(changed.bids).toEqual([
      [99.9, 1.25],
      [99.7, 0],
    ]);
    expect(changed.asks).toEqual([[100.2, 6]]);
    expect(book.levels('bids')).toEqual([
      [99.9, 1.25],
      [99.8, 2],
    ]);
    // removing a level that is not there changes nothing
    expect(book.update([[95, 0]], [])).toEqual({ bids: [], asks: [] });
  });

  it('truncates to the subscribed depth and reports the levels that fell out as removed', () => {
    const { book } = snap(3);
    // a new best bid pushes 99.7 out of the depth of 3: Kraken sends no qty 0 for it
    const changed = book.update([[99.95, 1]], []);
    expect(changed.bids).toEqual([
      [99.95, 1],
      [99.7, 0],
    ]);
    expect(book.levels('bids').map(([p]) => p)).toEqual([99.95, 99.9, 99.8]);
    // an ask beyond the depth is dropped at once
    book.update(
      [],
      [
        [100.3, 1],
        [100.4, 1],
      ],
    );
    expect(book.levels('asks').map(([p]) => p)).toEqual([100.0, 100.1, 100.3]);
  });

  it('rejects malformed levels and checksums naming the field', () => {
    expect(() => parseBookData({ symbol: 'BTC/USD', bids: [{ price: -1, qty: 1 }], asks: [], checksum: 1 })).toThrow(/book\.bids\[0\]\.price/);
    expect(() => parseBookData({ symbol: 'BTC/USD', bids: [{ price: 1, qty: -1 }], asks: [], checksum: 1 })).toThrow(/book\.bids\[0\]\.qty/);
    expect(() => parseBookData({ symbol: 'BTC/USD', bids: [], asks: [], checksum: '12' })).toThrow(/book\.checksum/);
    expect(() => parseBookData({ symbol: 'BTC/USD', bids: 'x', asks: [], checksum: 1 })).toThrow(/book\.bids/);
    // a side may be absent in an update
    expect(parseBookData({ symbol: 'BTC/USD', bids: [{ price: 1, qty: 0 }], checksum: 5 }).asks).toEqual([]);
  });
});
