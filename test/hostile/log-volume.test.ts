import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogSampler } from '../../src/core/log-sampler.js';
import { rawHttp, startTarget } from './kit.js';
import type { Target } from './kit.js';

/**
 * Log volume an unauthenticated client controls. A request refused for its framing (two
 * `Content-Length` headers, ...) was logged at `info`, one line per request and with no limit but
 * the client's connection rate: one loopback client wrote 7,460 lines (1.4 MB) a second, about 5
 * GB an hour of log. The refusals are still counted one by one in
 * `tickwire_protocol_errors_total{code="BAD_HTTP_FRAMING"}`; the log has one line per 10 s at
 * most, with how many were refused since the last one.
 */
describe('hostile: log lines per request', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({ log: { level: 'info' }, gateway: { workers: 1 } }, { LOG_LEVEL: 'info' });
  });
  afterAll(() => target.stop());

  it('300 requests refused for their framing write one log line, and are all counted', async () => {
    const before = await target.metric('tickwire_protocol_errors_total', { code: 'BAD_HTTP_FRAMING' });
    const request = 'GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab';
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++)
      statuses.push(...(await Promise.all(Array.from({ length: 10 }, () => rawHttp(target.port, request, { waitMs: 5000 })))).map((r) => r.status));
    expect(statuses.filter((s) => s === 400)).toHaveLength(300);
    expect(await target.metric('tickwire_protocol_errors_total', { code: 'BAD_HTTP_FRAMING' })).toBe(before + 300);
    const lines = target.proc
      .output()
      .split('\n')
      .filter((l) => l.includes('ambiguous framing'));
    // one line per 10 s at most: the test takes far less than 20 s
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(2);
  });
});

describe('LogSampler', () => {
  it('lets one line through per interval and counts the others for the next', () => {
    const s = new LogSampler(10_000);
    expect(s.take(0)).toEqual({ suppressed: 0 });
    expect(s.take(1)).toBeUndefined();
    expect(s.take(9_999)).toBeUndefined();
    expect(s.take(10_000)).toEqual({ suppressed: 2 });
    expect(s.take(10_001)).toBeUndefined();
    expect(s.take(50_000)).toEqual({ suppressed: 1 });
    expect(s.take(60_000)).toEqual({ suppressed: 0 });
  });
});
