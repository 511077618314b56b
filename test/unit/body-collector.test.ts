import { describe, expect, it } from 'vitest';
import { bodyCollector } from '../../src/http/http.js';

/**
 * A request body gathered from uWS's chunks. `add` copies (uWS lends a chunk for the call only and
 * detaches it after); `adopt` takes a chunk the caller copied already (an HTTP-stream POST's body
 * held back while the session's gateway is asked), so that it is not copied a second time.
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

  it('adopt keeps the chunk it is given (no second copy), in order with added chunks', async () => {
    const body = bodyCollector(100);
    const owned = new Uint8Array([1, 2, 3]);
    body.adopt(owned.buffer, false);
    // adopted, not copied: the collector holds these very bytes until the body is complete
    owned[0] = 7;
    body.add(new Uint8Array([4, 5]).buffer, true);
    expect([...(await body.done)]).toEqual([7, 2, 3, 4, 5]);
  });

  it('counts adopted and added bytes toward the limit: 413 past it', async () => {
    const body = bodyCollector(4);
    body.adopt(new Uint8Array(3).buffer, false);
    body.add(new Uint8Array(2).buffer, true);
    await expect(body.done).rejects.toMatchObject({ status: 413, code: 'TOO_LARGE' });
  });
});
