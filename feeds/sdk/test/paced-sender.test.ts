import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PacedSender } from '../paced-sender.js';
import type { StreamSession } from '../runner.js';

/** a session that records what was sent on it, and when (fake clock) */
function session(log: string[]): StreamSession {
  return { open: true, send: (d: string | Uint8Array) => void log.push(String(d)) } as unknown as StreamSession;
}

describe('PacedSender', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('senders of one key share one window and one queue, in the order messages were given', () => {
    const key = `test-shared-${Math.random()}`;
    const a = new PacedSender(3, 1000, key);
    const b = new PacedSender(3, 1000, key);
    const sent: string[] = [];
    const sa = session(sent);
    const sb = session(sent);
    a.send(sa, 'a1');
    a.send(sa, 'a2');
    b.send(sb, 'b1');
    b.send(sb, 'b2');
    a.send(sa, 'a3');
    expect(sent).toEqual(['a1', 'a2', 'b1']);
    expect([a.waiting, b.waiting]).toEqual([1, 1]);
    vi.advanceTimersByTime(999);
    expect(sent).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual(['a1', 'a2', 'b1', 'b2', 'a3']);
  });

  it("clear() drops only its own sender's messages; the window still counts what it sent", () => {
    const key = `test-clear-${Math.random()}`;
    const a = new PacedSender(2, 1000, key);
    const b = new PacedSender(2, 1000, key);
    const sent: string[] = [];
    a.send(session(sent), 'a1');
    a.send(session(sent), 'a2');
    a.send(session(sent), 'a3');
    b.send(session(sent), 'b1');
    a.clear();
    expect(a.waiting).toBe(0);
    expect(b.waiting).toBe(1);
    // a's two sends still fill the window: b waits for them to leave it
    vi.advanceTimersByTime(999);
    expect(sent).toEqual(['a1', 'a2']);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual(['a1', 'a2', 'b1']);
    b.clear();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('senders without a key count on their own; a key used with another limit is refused', () => {
    const a = new PacedSender(1, 1000);
    const b = new PacedSender(1, 1000);
    const sent: string[] = [];
    a.send(session(sent), 'a1');
    b.send(session(sent), 'b1');
    expect(sent).toEqual(['a1', 'b1']);
    const key = `test-limit-${Math.random()}`;
    new PacedSender(8, 1100, key);
    expect(() => new PacedSender(5, 1100, key)).toThrow(/differs from the key's limit/);
  });

  it('an urgent message goes ahead of the waiting ones that are not urgent, after the urgent ones', () => {
    const key = `test-urgent-${Math.random()}`;
    const a = new PacedSender(1, 1000, key);
    const b = new PacedSender(1, 1000, key);
    const sent: string[] = [];
    a.send(session(sent), 'a1');
    a.send(session(sent), 'a2');
    a.send(session(sent), 'a3');
    b.send(session(sent), 'b1', true);
    b.send(session(sent), 'b2', true);
    b.send(session(sent), 'b3');
    expect(sent).toEqual(['a1']);
    vi.advanceTimersByTime(5000);
    expect(sent).toEqual(['a1', 'b1', 'b2', 'a2', 'a3', 'b3']);
  });
});
