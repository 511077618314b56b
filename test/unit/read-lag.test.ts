import { describe, expect, it } from 'vitest';
import { ReadLagProbe } from '../../src/gateway/read-lag.js';

describe('ReadLagProbe', () => {
  it('sends one ping at a time, every everyMs, and measures from the oldest unanswered one', () => {
    const p = new ReadLagProbe();
    const first = p.due(0, 1000);
    expect(first).toBeDefined();
    expect(p.due(500, 1000)).toBeUndefined(); // too soon
    expect(p.due(5000, 1000)).toBeUndefined(); // one is outstanding
    expect(p.lag(5000)).toBe(0); // the client never answered yet: not held to the lag
    expect(p.onPong(first!)).toBe(true);
    const second = p.due(6000, 1000)!;
    expect(p.lag(9000)).toBe(3000);
    const marker = p.mark(9000);
    expect(p.lag(9500)).toBe(3500); // still measured from the oldest
    expect(p.onPong(second)).toBe(true);
    expect(p.pending).toBe(true);
    expect(p.lag(9600)).toBe(600);
    expect(p.onPong(marker)).toBe(true);
    expect(p.pending).toBe(false);
    expect(p.lag(20_000)).toBe(0);
  });

  it('a pong answers every ping before it; foreign or repeated pongs are ignored', () => {
    const p = new ReadLagProbe();
    const a = p.due(0, 10)!;
    const b = p.mark(1);
    const c = p.mark(2);
    expect(p.onPong('')).toBe(false); // uWS's own pings carry no payload
    expect(p.onPong('other')).toBe(false);
    expect(p.onPong(b)).toBe(true);
    expect(p.onPong(a)).toBe(false); // already answered by b's pong
    expect(p.lag(10)).toBe(8); // c is left
    expect(p.onPong(c)).toBe(true);
    expect(p.pending).toBe(false);
  });

  it('keeps the oldest ping and at most four for a client that answers nothing', () => {
    const p = new ReadLagProbe();
    const first = p.due(0, 10)!;
    expect(p.onPong(first)).toBe(true);
    p.due(100, 10);
    for (let i = 1; i <= 20; i++) p.mark(100 + i);
    expect(p.lag(1100)).toBe(1000);
  });
});
