import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { healthText } from '../../feeds/sdk/health.js';
import { createLogger } from '../../src/core/logger.js';
import { REDACTED, redactText } from '../../src/core/secrets.js';
import { HOSTILE_TEXTS, KIB } from '../helpers/hostile-text.js';

/**
 * Redaction runs on every string of every log line (message, fields, errors and their stacks) and
 * on every provider message a feed's health quotes (served at /health, /v1/feeds, /admin). Its
 * cost must grow with the text, not with its square: text of many short words and no `://`
 * (`a.a.a.…`) or of many `eyJ` after dashes (`eyJ-eyJ-…`) made the URL and JWT patterns scan to
 * the end of the text from every word (32 KB: 0.5 s and 1.3 s; 256 KB: minutes), blocking the
 * process's event loop (every connection of a gateway) for one log line.
 */
const HOSTILE = HOSTILE_TEXTS;

/**
 * The patterns before the linear rewrite (src/core/secrets.ts), for the equivalence check on
 * short prefixes (quadratic, but fast on 2 KiB).
 */
const OLD_URL = /(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:,]*)(:[^/@\s,]*)?@/gi;
const OLD_JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const oldJwts = (text: string): string => text.replace(OLD_JWT, REDACTED);
const oldUrls = (text: string): string =>
  text.replace(OLD_URL, (_m, scheme: string, user: string, pass?: string) => (pass ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`));

// No timed assertion (the machine is shared): each case runs the whole hostile text under a test
// timeout of 20 s, which the quadratic scans overran by minutes; bench/redaction.ts prints the
// figures. On short prefixes the rewrite hides at least what the old patterns hid.
describe('redaction of long hostile text', () => {
  for (const [name, text] of Object.entries(HOSTILE)) {
    it(`${name} (${Math.round(text.length / KIB)} KiB): redacted whole; on a prefix it hides all the old patterns hid`, { timeout: 20_000 }, () => {
      const whole = redactText(text);
      expect(whole.length).toBeGreaterThan(0);
      const prefix = text.slice(0, 2 * KIB);
      expect(redactText(prefix)).toBe(redactText(oldUrls(oldJwts(prefix))));
    });
  }

  it('a log line and a feed health text holding such text are written', { timeout: 20_000 }, () => {
    const lines: string[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const log = createLogger({ level: 'info', format: 'json' }, 'tickwire', out);
    const text = HOSTILE['eyJ after dashes']!;
    log.info({ detail: text }, 'provider message');
    expect(healthText(text, 500).length).toBeLessThanOrEqual(500);
    expect(lines).toHaveLength(1);
  });

  it('still hides a token, a password in a URL and a JWT inside such text', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';
    const text = `${'eyJ-'.repeat(20 * KIB)} ${jwt} ${'a.'.repeat(20 * KIB)} redis://u:pw-Zq81xK@10.0.0.5:6379 x-${jwt}-y ${jwt}.more`;
    const red = redactText(text);
    expect(red).not.toContain('c2lnbmF0dXJlLWJ5dGVz');
    expect(red).not.toContain('pw-Zq81xK');
    expect(red).toContain(`redis://u:${REDACTED}@10.0.0.5:6379`);
    expect(red).toContain(`x-${REDACTED}`);
    // a JWS ends with its third segment: what follows the next dot is kept
    expect(red).toContain(`${REDACTED}.more`);
  });
});
