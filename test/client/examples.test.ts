import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, token } from '../auth/helpers.js';
import { startTestEngine, streamUrl } from './helpers.js';

/**
 * Every TypeScript snippet of docs/client-sdk.md is a file under examples/client/ (the doc
 * names it in a comment right above the block, and the block must equal the file), and every
 * such file runs, as written, against a real engine.
 */
const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'client-sdk.md'), 'utf8');

async function example(file: string, env: Record<string, string>): Promise<string> {
  // the package's sources (the export condition tests use); the tarball is tested in package-install.test.ts
  const r = await run(process.execPath, ['--conditions=tickwire-source', '--import', 'tsx', file], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 60_000,
  });
  return r.stdout;
}

let open: Engine;
let secured: Engine;
beforeAll(async () => {
  open = await startTestEngine();
  secured = await startTestEngine(undefined, { auth: { mode: 'required', jwtSecret: SECRET } });
}, 60_000);
afterAll(async () => {
  await open?.close();
  await secured?.close();
});

// each example is a process of its own against the two engines (its own user, rule and channels): they run at the same time
describe('docs/client-sdk.md examples', { timeout: 90_000, concurrent: true }, () => {
  it('every ts block is an examples/client file, verbatim', () => {
    const blocks = [...doc.matchAll(/<!-- example: (examples\/client\/[\w-]+\.ts) -->\n```ts\n([\s\S]*?)```/g)];
    const allTs = [...doc.matchAll(/```ts\n/g)].length;
    expect(blocks.length).toBe(allTs);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    for (const [, file, body] of blocks) expect(body, file).toBe(readFileSync(join(root, file!), 'utf8'));
  });

  it('quickstart: connects, subscribes, prints updates, closes', async () => {
    const out = await example('examples/client/quickstart.ts', { TICKWIRE_URL: streamUrl(open.port) });
    expect(out).toContain("subscribed [ 'ticker:BTC-USD', 'quote:BTC-USD' ] at 250 ms");
    expect(out).toMatch(/bid \d/);
    expect(out).toContain('connection closed');
  });

  it('chart: bar history on subscribe, then older bars over GET /v1/bars', async () => {
    const out = await example('examples/client/chart.ts', { TICKWIRE_URL: streamUrl(open.port) });
    expect(out).toMatch(/bars held [1-9]\d* older loaded \d+/);
  });

  it('order book: LocalBook rebuilds book:BTC-USD from its snapshot and updates, every checksum matching', async () => {
    const out = await example('examples/client/order-book.ts', { TICKWIRE_URL: streamUrl(open.port) });
    expect(out).toContain("subscribed [ 'book:BTC-USD' ] at 250 ms");
    expect(out).toMatch(/snapshot seq \d+ checksum ok, depth 10/);
    expect(out.match(/checksum ok/g)?.length).toBe(5);
    expect(out).toMatch(/ask +\d+\.\d\d \d/);
  });

  it('errors: rejected channels and a refused request', async () => {
    const out = await example('examples/client/errors.ts', { TICKWIRE_URL: streamUrl(open.port) });
    expect(out).toContain('rejected quote:NOPE: UNKNOWN_CHANNEL');
    expect(out).toContain('refused request: subscribe: "throttle"');
  });

  it('visibility: off screen, on screen, page hidden and shown, each change answered', async () => {
    const out = await example('examples/client/visibility.ts', { TICKWIRE_URL: streamUrl(open.port) });
    expect(out).toContain('page visible: false');
    expect(out).toContain('page visible: true');
    expect(out).toMatch(/snapshot ticker:NVDA seq \d+/);
  });

  it('alerts: creates, lists and deletes a rule over the connection; a bad rule is refused with its code', async () => {
    const out = await example('examples/client/alerts.ts', { TICKWIRE_URL: streamUrl(secured.port), TICKWIRE_TOKEN: await token({ sub: 'erin' }) });
    expect(out).toContain('created btc-dip: fresh');
    expect(out).toContain("rules: [ 'btc-dip (change BTC-USD)' ]");
    expect(out).toMatch(/refused: ALERT_INVALID: .*level/);
    expect(out).toContain('deleted btc-dip');
  });

  it('auth: a valid token subscribes private channels; an expired one says why', async () => {
    const url = streamUrl(secured.port);
    const ok = await example('examples/client/auth.ts', { TICKWIRE_URL: url, TICKWIRE_TOKEN: await token({ sub: 'alice' }) });
    expect(ok).toContain("authenticated; subscribed [ 'portfolio', 'executions' ]");
    const refused = await example('examples/client/auth.ts', { TICKWIRE_URL: url, TICKWIRE_TOKEN: await token({ expIn: -60 }) });
    expect(refused).toContain('refused: expired');
  });
});
