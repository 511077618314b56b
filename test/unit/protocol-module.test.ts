import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  authAck,
  CloseCode,
  dataItem,
  ERROR_CODES,
  errorFrame,
  itemsFrame,
  pongFrame,
  ProtocolError,
  subscribeAck,
  Subprotocol,
  TickwireError,
  unsubscribeAck,
} from '../../src/protocol/index.js';
import { jsonCodec } from '../../src/codec/frames.js';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'protocol.md'), 'utf8');

/** The rows of the markdown table that follows `heading`, first cell of each. */
function firstCells(heading: string): string[] {
  const at = doc.indexOf(heading);
  expect(at, heading).toBeGreaterThanOrEqual(0);
  const rows: string[] = [];
  let seenTable = false;
  for (const line of doc.slice(at).split('\n').slice(1)) {
    if (line.startsWith('|')) {
      seenTable = true;
      const cell = line.split('|')[1]!.trim().replace(/`/g, '');
      if (cell !== 'code' && !/^-+$/.test(cell)) rows.push(cell);
    } else if (seenTable) break;
  }
  return rows;
}

describe('src/protocol: the one definition of protocol v1', () => {
  it('has no import outside itself (it ships in the browser SDK)', () => {
    const dir = join(root, 'src', 'protocol');
    for (const f of readdirSync(dir)) {
      const text = readFileSync(join(dir, f), 'utf8');
      for (const m of text.matchAll(/from '([^']+)'/g)) expect(m[1], `${f} imports ${m[1]}`).toMatch(/^\.\/[\w-]+\.js$/);
      expect(text, f).not.toMatch(/\bbigint\b|\bBuffer\b|process\./);
    }
  });

  it('error codes are exactly those of the docs table', () => {
    expect([...ERROR_CODES].sort()).toEqual(firstCells('## Error codes').sort());
  });

  it('close codes the gateway sends are exactly those of the docs table', () => {
    const sent = Object.values(CloseCode)
      .filter((c) => c !== CloseCode.ABNORMAL)
      .map(String);
    expect(sent.sort()).toEqual(firstCells('## Close codes').sort());
  });

  it('subprotocol names are the documented ones', () => {
    expect(doc).toContain(Subprotocol.MSGPACK);
    expect(doc).toContain(Subprotocol.JSON);
  });

  it('builders write the documented frames, optional fields left out, keys in wire order', () => {
    const json = (f: object): string => new TextDecoder().decode(jsonCodec.encode(f));
    expect(json(subscribeAck(1, ['quote:AAPL'], [], 250))).toBe('{"op":"ack","id":1,"subscribed":["quote:AAPL"],"rejected":[],"throttle":250}');
    expect(json(subscribeAck(undefined, [], [{ channel: 'x', code: 'UNKNOWN_CHANNEL', reason: 'r' }], 0))).toBe(
      '{"op":"ack","subscribed":[],"rejected":[{"channel":"x","code":"UNKNOWN_CHANNEL","reason":"r"}],"throttle":0}',
    );
    expect(json(unsubscribeAck('a', ['quote:AAPL']))).toBe('{"op":"ack","id":"a","unsubscribed":["quote:AAPL"],"rejected":[]}');
    expect(json(authAck(4, 1718000000000))).toBe('{"op":"ack","id":4,"subscribed":[],"rejected":[],"expires":1718000000000}');
    expect(json(authAck(undefined, undefined))).toBe('{"op":"ack","subscribed":[],"rejected":[]}');
    expect(json(pongFrame(3, 5))).toBe('{"op":"pong","id":3,"server_time":5}');
    expect(json(errorFrame('BAD_REQUEST', 'm', 7))).toBe('{"op":"error","id":7,"code":"BAD_REQUEST","message":"m"}');
    expect(json(errorFrame('UNAUTHENTICATED', 'm', undefined, 9))).toBe('{"op":"error","code":"UNAUTHENTICATED","message":"m","expires":9}');
    const a = dataItem('data', 'quote:AAPL', 2, { bp: 1 }, false, 3);
    expect(json(a)).toBe('{"op":"data","ch":"quote:AAPL","seq":2,"d":{"bp":1},"coalesced":3}');
    expect(json(dataItem('data', 'quote:AAPL', 2, { bp: 1 }, true))).toBe('{"op":"data","ch":"quote:AAPL","seq":2,"d":{"bp":1},"snapshot":true}');
    expect(itemsFrame([a])).toBe(a);
    expect(json(itemsFrame([a, a]))).toBe(`{"op":"batch","items":[${json(a)},${json(a)}]}`);
  });

  it('ProtocolError is a TickwireError with a typed code', () => {
    const e = new ProtocolError('LIMIT', 'too many');
    expect(e).toBeInstanceOf(TickwireError);
    expect(e.code).toBe('LIMIT');
    expect(e.name).toBe('ProtocolError');
  });
});
