import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient } from '../../src/client/index.js';
import { entitlementsClaim, parseTtl } from '../../src/cli/token.js';
import { errorOf } from '../helpers/config-error.js';
import { tickwireCli } from '../helpers/processes.js';
import { startTestEngine, streamUrl } from './helpers.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const SECRET = 'dev-secret-for-token-cli-test-0123456789';
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [...tickwireCli(), 'token', ...args], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', ...env },
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('tickwire token', { timeout: 60_000 }, () => {
  it('mints a token the gateway accepts, with the entitlements asked for', async () => {
    const engine = await startTestEngine(undefined, { auth: { mode: 'required', jwtSecret: SECRET } });
    cleanups.push(() => engine.close());
    const r = await cli(['--sub', 'alice', '--ttl', '1h', '--ent', 'crypto'], { TICKWIRE_JWT_SECRET: SECRET });
    expect(r.code).toBe(0);
    const token = r.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const client = new TickwireClient({ url: streamUrl(engine.port), token, reconnect: false });
    cleanups.push(() => client.close());
    await client.connect();
    const ack = await client.subscribe(['portfolio', 'quote:BTC-USD', 'quote:AAPL']);
    expect(ack.subscribed.sort()).toEqual(['portfolio', 'quote:BTC-USD']);
    expect(ack.rejected.map((x) => [x.channel, x.code])).toEqual([['quote:AAPL', 'FORBIDDEN']]);
  });

  it('names the key when no secret is configured, and refuses bad flags clearly', async () => {
    const r = await cli(['--sub', 'alice'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('TICKWIRE_JWT_SECRET');
    expect(parseTtl('90s')).toBe(90);
    expect(parseTtl('15m')).toBe(900);
    expect(parseTtl('1h')).toBe(3600);
    expect(parseTtl('7d')).toBe(604800);
    expect(errorOf(() => parseTtl('soon'))).toContain('--ttl "soon"');
    expect(entitlementsClaim('crypto,AAPL,*-USD', 'stock', 'ent')).toEqual({ classes: ['crypto'], symbols: ['AAPL', '*-USD'], delayed: ['stock'] });
    expect(errorOf(() => entitlementsClaim('aapl', undefined, 'ent'))).toContain('--ent');
  });
});
