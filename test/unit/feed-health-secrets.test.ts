import { describe, expect, it } from 'vitest';
import { FeedHealthTracker } from '../../feeds/sdk/health.js';
import { redact } from '../../feeds/sdk/runner.js';

/**
 * Feed health (`detail`, `lastError`) quotes provider and library messages and is served to
 * anyone who can reach `/health` and `/v1/feeds`: a credential quoted in such a message (a URL
 * with its API key, a token echoed in a refusal) must not go out with it.
 */
describe('feed health text carries no credential', () => {
  it('redacts keys in URLs, passwords in URLs, JWTs and bearer tokens in state details and errors', () => {
    const h = new FeedHealthTracker('prov');
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    h.setState('error', 'bad provider URL wss://socket.example.com/stocks?apiKey=SECRETKEY123: Invalid URL');
    h.error(`refused: Authorization: Bearer ${jwt} (wss://svc:hunter2@feed.example.com/ws)`);
    const snap = h.snapshot();
    const text = JSON.stringify(snap);
    for (const secret of ['SECRETKEY123', jwt, 'hunter2']) expect(text).not.toContain(secret);
    expect(snap.detail).toContain('apiKey=[redacted]');
    expect(snap.lastError).toContain('Bearer [redacted]');
  });

  it("the stream runner's URLs in messages: every secret query parameter the old list knew, and a password", () => {
    for (const p of ['token', 'apiKey', 'apikey', 'key', 'secret', 'jwt'])
      expect(redact(`wss://x.example/ws?a=1&${p}=S3CR3T&b=2`)).toBe(`wss://x.example/ws?a=1&${p}=[redacted]&b=2`);
    expect(redact('wss://u:S3CR3T@x.example/ws')).toBe('wss://u:[redacted]@x.example/ws');
  });
});
