import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Frames that name many channels. The frame rate (`limits.messagesPerSec`, burst
 * `limits.messageBurst`) counted a subscribe of 1000 channels like a ping, though the gateway
 * resolves, subscribes and acknowledges each channel (about 2.5 µs each, measured): a burst of
 * 200 such frames was 200 000 channels, about half a second of the gateway's CPU, and the
 * sustained rate an eighth of a core per connection. A frame counts as one frame per started
 * CHANNELS_PER_FRAME (100) channels it names; one the budget cannot cover is answered
 * `RATE_LIMIT` with its `id`, and nothing of it is done.
 */
describe('hostile: frames naming many channels', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' }, limits: { messagesPerSec: 1, messageBurst: 45, rateLimitCloseMs: 60_000 } },
      { roles: { feeds: [] }, env: {} },
    );
  });
  afterAll(() => engine.close());

  const names = (tag: string, n: number) => Array.from({ length: n }, (_, k) => `quote:${tag}${k}`);
  const answered = (c: TestClient, id: number) => c.frames.find((f: Frame) => f.id === id && (f.op === 'ack' || f.op === 'error'));

  it('counts one frame per started 100 channels: a burst of 45 covers four frames of 1000, not forty', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    const refusedBefore = engine.access!.limits.stats.rateLimitedFrames;
    for (let i = 0; i < 40; i++) c.send({ op: 'subscribe', id: i, channels: names(`F${i}X`, 1000), snapshot: false });
    // frames with no token left at all are dropped unanswered, with one RATE_LIMIT without id (the frame rate as before)
    await c.waitFor((f) => f.op === 'error' && f.code === 'RATE_LIMIT' && f.id === undefined, 5000);
    const acks = c.frames.filter((f) => f.op === 'ack' && typeof f.id === 'number' && f.id < 40);
    // 45 tokens: four frames of 1000 channels (10 each); the fifth, with 5 tokens left, is refused with its id
    expect(acks.map((a) => a.id)).toEqual([0, 1, 2, 3]);
    expect(answered(c, 4)).toMatchObject({ op: 'error', code: 'RATE_LIMIT' });
    expect(String(answered(c, 4)!.message)).toContain('100 channels');
    // what was refused is not handled: the four acks answer for 4000 channels, the refused frames for none
    expect(acks.reduce((n, a) => n + (a.subscribed as unknown[]).length + (a.rejected as unknown[]).length, 0)).toBe(4000);
    expect(engine.access!.limits.stats.rateLimitedFrames).toBeGreaterThan(refusedBefore);
    c.close();
  });

  it('a frame of up to 100 channels still counts as one', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    for (let i = 0; i < 40; i++) c.send({ op: 'subscribe', id: i, channels: names(`G${i}X`, 100), snapshot: false });
    await waitFor(() => answered(c, 39) !== undefined, { timeout: 5000, what: 'the 40th answer' });
    expect(c.frames.filter((f) => f.op === 'ack').length).toBe(40);
    c.close();
  });

  it('unsubscribe and visibility frames count the same way', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    for (let i = 0; i < 3; i++) c.send({ op: 'unsubscribe', id: i, channels: names(`H${i}X`, 1000) });
    c.send({ op: 'visibility', id: 3, visible: false, channels: names('V', 1000) });
    c.send({ op: 'unsubscribe', id: 4, channels: names('W', 1000) });
    await waitFor(() => answered(c, 4) !== undefined, { timeout: 5000, what: 'the fifth answer' });
    expect([0, 1, 2, 3].map((id) => answered(c, id)?.op)).toEqual(['ack', 'ack', 'ack', 'ack']);
    expect(answered(c, 4)).toMatchObject({ op: 'error', code: 'RATE_LIMIT', id: 4 });
    c.close();
  });

  it('a frame never costs more than the whole burst: with limits.messageBurst below 10, a full bucket admits 1000 channels', async () => {
    // a subscribe of 1000 channels is what the protocol allows in one request (and what the SDK
    // sends on a reconnect): a burst below its cost must not refuse it for ever
    const small = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' }, limits: { messagesPerSec: 2, messageBurst: 4, rateLimitCloseMs: 60_000 } },
      { roles: { feeds: [] }, env: {} },
    );
    try {
      const c = await TestClient.connect(`ws://127.0.0.1:${small.port}/v1/stream`, { encoding: 'json' });
      c.send({ op: 'subscribe', id: 1, channels: names('S', 1000), snapshot: false });
      await waitFor(() => answered(c, 1) !== undefined, { timeout: 5000, what: 'the answer' });
      expect(answered(c, 1)).toMatchObject({ op: 'ack', id: 1 });
      // the bucket is empty now: the next one waits for it to fill again
      c.send({ op: 'subscribe', id: 2, channels: names('T', 1000), snapshot: false });
      await new Promise((r) => setTimeout(r, 300));
      expect(answered(c, 2)?.op).not.toBe('ack');
      c.close();
    } finally {
      await small.close();
    }
  });

  it('a visibility frame that hides or shows the page counts the subscriptions it moves: one frame per started 100', async () => {
    // 250 instruments: quote and ticker of each are 500 latest-value subscriptions, every one
    // paused by page "hidden" and resumed with a fresh snapshot by page "visible". Such a frame
    // counted as one, so a connection could move 25 000 subscriptions a second by toggling the
    // page (measured with 5 connections of 1000 subscriptions toggling at the frame rate against a
    // `tickwire start` process: a bystander's ping up to 814 ms, 125 MiB of snapshots in 5 s)
    const dir = mkdtempSync(join(tmpdir(), 'tw-vis-'));
    const file = join(dir, 'instruments.json');
    writeFileSync(file, JSON.stringify(Array.from({ length: 250 }, (_, i) => ({ symbol: `P${i}X`, assetClass: 'stock', currency: 'USD' }))));
    const many = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        instrumentsFile: file,
        limits: { messagesPerSec: 1, messageBurst: 45, rateLimitCloseMs: 60_000 },
      },
      { roles: { feeds: [] }, env: {} },
    );
    try {
      const channels = Array.from({ length: 250 }, (_, i) => [`quote:P${i}X`, `ticker:P${i}X`]).flat();
      const c = await TestClient.connect(`ws://127.0.0.1:${many.port}/v1/stream`, { encoding: 'json' });
      // 5 frames of the 45
      const ack = await c.request({ op: 'subscribe', id: 1, channels, snapshot: false });
      expect((ack.subscribed as string[]).length).toBe(500);
      for (let i = 0; i < 20; i++) c.send({ op: 'visibility', id: 10 + i, page: i % 2 === 0 ? 'hidden' : 'visible' });
      await c.waitFor((f) => f.op === 'error' && f.code === 'RATE_LIMIT' && f.id === undefined, 5000);
      const acks = c.frames.filter((f) => f.op === 'ack' && typeof f.id === 'number' && f.id >= 10);
      // 40 tokens left: eight page changes of 5 frames each, not twenty
      expect(acks.map((a) => a.id)).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
      c.close();

      // a page state the connection has already moves nothing: one frame, as before
      const d = await TestClient.connect(`ws://127.0.0.1:${many.port}/v1/stream`, { encoding: 'json' });
      await d.request({ op: 'subscribe', id: 1, channels, snapshot: false });
      for (let i = 0; i < 30; i++) d.send({ op: 'visibility', id: 10 + i, page: 'visible' });
      await waitFor(() => (answered(d, 39) ? true : undefined), { timeout: 5000, what: 'the 30th answer' });
      expect(d.frames.filter((f) => f.op === 'ack' && typeof f.id === 'number' && f.id >= 10).length).toBe(30);
      d.close();
    } finally {
      await many.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
