import { Packr, Unpackr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { codecFor, encodeMsgpack } from '../../packages/client/src/codec.js';

const standard = new Unpackr({ useRecords: false, mapsAsObjects: true });
const packr = new Packr({ useRecords: false });

describe('client codec', () => {
  it('encodes client frames as standard MessagePack', () => {
    const frames = [
      { op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:BTC-USD', 'bar.1s:BRK.B'], throttle: 250, snapshot: true },
      { op: 'subscribe', id: 70000, channels: ['executions'], since: 4_294_967_295, snapshot: false },
      { op: 'unsubscribe', id: 2, channels: Array.from({ length: 40 }, (_, i) => `ticker:S${i}`) },
      { op: 'ping', id: 3 },
      { op: 'auth', id: 4, token: 'x'.repeat(300) + 'é€😀' },
      { n: [-1, -32, -33, -129, -40000, -2_147_483_648, 0.5, 1e20, -1e-9, 255, 256, 65535, 65536], s: 'a'.repeat(70000), nul: null, f: false },
    ];
    for (const f of frames) expect(standard.unpack(encodeMsgpack(f))).toEqual(f);
  });

  it('leaves out undefined fields like JSON does', () => {
    expect(standard.unpack(encodeMsgpack({ op: 'ping', id: 1, extra: undefined }))).toEqual({ op: 'ping', id: 1 });
  });

  it('decodes msgpack and json server frames to the same object', () => {
    const frame = {
      op: 'batch',
      items: [{ op: 'data', ch: 'quote:AAPL', seq: 7, d: { bp: 1.5, ap: 1.6, t: 1700000000123.5, src: 'synthetic' }, coalesced: 3 }],
    };
    const m = codecFor('msgpack');
    const j = codecFor('json');
    const bytes = packr.pack(frame);
    expect(m.decode(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))).toEqual(frame);
    expect(m.decode(new Uint8Array(bytes))).toEqual(frame);
    expect(m.decode([bytes.subarray(0, 5), bytes.subarray(5)])).toEqual(frame);
    expect(j.decode(JSON.stringify(frame))).toEqual(frame);
    expect(j.encode({ op: 'ping', id: 9 })).toBe('{"op":"ping","id":9}');
    expect(m.subprotocol).toBe('tickwire.v1.msgpack');
    expect(j.subprotocol).toBe('tickwire.v1.json');
  });
});
