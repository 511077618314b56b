import { describe, expect, it } from 'vitest';
import { bodyCollector } from '../../src/http/http.js';

/**
 * A request body gathered from uWS's chunks. `add` copies (uWS lends a chunk for the call only and
 * detaches it after); `adopt` takes a chunk the caller copied already (an HTTP-stream POST's body
 * held back while the session's gateway is asked). Both go into one buffer grown by doubling, so a
 * body held costs at most twice its bytes however small its chunks
 * (test/hostile/trickled-bodies.test.ts: a Buffer per chunk cost hundreds of bytes per byte).
 */
describe('bodyCollector', () => {
  it('add copies each lent chunk: the body survives the chunks being reused', async () => {
    const body = bodyCollector(100);
    const lent = new Uint8Array([1, 2, 3]);
    body.add(lent.buffer, false);
    lent.fill(9); // uWS reuses its receive buffer
    body.add(new Uint8Array([4]).buffer, true);
    expect([...(await body.done)]).toEqual([1, 2, 3, 4]);
  });

  it('adopt takes the chunk it is given, in order with added chunks', async () => {
    const body = bodyCollector(100);
    body.adopt(new Uint8Array([1, 2, 3]).buffer, false);
    body.add(new Uint8Array([4, 5]).buffer, true);
    expect([...(await body.done)]).toEqual([1, 2, 3, 4, 5]);
  });

  it('100 000 one-byte chunks: the body in order, in one buffer of at most twice its size', async () => {
    const n = 100_000;
    const body = bodyCollector(1 << 20);
    for (let i = 0; i < n; i++) body.add(new Uint8Array([i % 251]).buffer, i === n - 1);
    const done = await body.done;
    expect(done.length).toBe(n);
    expect(done.every((b, i) => b === i % 251)).toBe(true);
    expect(done.buffer.byteLength).toBeLessThanOrEqual(2 * n);
  });

  it('counts adopted and added bytes toward the limit: 413 past it', async () => {
    const body = bodyCollector(4);
    body.adopt(new Uint8Array(3).buffer, false);
    body.add(new Uint8Array(2).buffer, true);
    await expect(body.done).rejects.toMatchObject({ status: 413, code: 'TOO_LARGE' });
  });
});
