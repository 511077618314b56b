import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build, type BuildOptions } from 'esbuild';
import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';
import { publishTick } from '../auth/helpers.js';

/**
 * The browser suite of @tickwire/react (test/browser/react.test.ts runs it with React 19,
 * react18.test.ts with React 18): real React and react-dom in headless Chromium (Debian's chromium driven
 * by playwright-core) against a real engine, which also serves the harness page
 * (test/browser/react-harness/). The harness records every frame the page sends.
 */
const SECRET = 'react-suite-secret-0123456789abcdefghijkl';
const SERVICE_TOKEN = 'react-suite-service-token-0123456789';
const HARNESS = join(process.cwd(), 'test', 'browser', 'react-harness');
const EXAMPLE = join(process.cwd(), 'examples', 'react');

interface Harness {
  sent: Record<string, unknown>[];
  renders: Record<string, number>;
  received: Record<string, { snapshot: boolean; at: number }[]>;
  frames: number;
  sockets: number;
  openSockets: number;
  claims(): Record<string, number>;
  framesFlushed(): number;
  mount(scenario: unknown, strict?: boolean): void;
  mountThenToken(first: string, second: string): void;
  keepQuotes(symbol: string, throttles: number[]): void;
  unmount(): void;
  setPageHidden(hidden: boolean): void;
  reactVersion: string;
  offered: string[];
  tokenCalls: number[];
  errorCalls: { version: number; code: string }[];
  pageListeners: number;
  unstableTapes: number;
  /** commits of the tapes */
  tapeRenders: number;
  rerender(scenario: unknown): void;
  alerts: { create(rule: unknown): Promise<unknown>; remove(id: string): Promise<string>; refresh(): Promise<void> } | undefined;
  dropSocket(): void;
  givenSubscriptions(): string[][];
  storeClient(): number | 'own' | undefined;
}
type W = { harness: Harness };

let rig: BrowserRig;
let engine: Engine;
let page: Page;

const sent = (): Promise<Record<string, unknown>[]> => page.evaluate(() => (window as unknown as W).harness.sent.slice());
const ops = async (op: string): Promise<Record<string, unknown>[]> => (await sent()).filter((f) => f.op === op);
const withChannel = (frames: Record<string, unknown>[], ch: string): Record<string, unknown>[] =>
  frames.filter((f) => (f.channels as string[] | undefined)?.includes(ch));
const connections = async (): Promise<number> =>
  ((await (await fetch(`http://127.0.0.1:${engine.port}/v1/stats`)).json()) as { connections: number }).connections;

async function freshPage(): Promise<void> {
  await page?.close();
  rig.pageErrors.length = 0;
  page = await rig.newPage({ width: 1000, height: 860 }, { consoleErrors: true });
  await page.goto(`http://127.0.0.1:${engine.port}/`);
  await page.waitForFunction(() => (window as unknown as Partial<W>).harness !== undefined);
}

/**
 * `react`: where React and react-dom come from (`{ react, 'react-dom' }` package folders, made
 * in beforeAll); undefined for the ones of this repository's node_modules.
 */
export function describeReact(major: number, react?: () => Promise<{ react: string; 'react-dom': string }>): void {
  describe(`@tickwire/react in a browser (React ${major})`, { timeout: 180_000 }, () => {
    beforeAll(async () => {
      rig = await bootBrowser({
        web: async (webDir) => {
          const harnessBuild: BuildOptions = {
            bundle: true,
            format: 'esm',
            platform: 'browser',
            target: ['es2022'],
            // the packages from their sources; React's development build (StrictMode double-mounts there)
            conditions: ['tickwire-source'],
            // this checkout's packages (node_modules may link another checkout's)
            alias: {
              '@tickwire/react': join(process.cwd(), 'packages', 'react', 'src', 'index.ts'),
              '@tickwire/client': join(process.cwd(), 'packages', 'client', 'src', 'index.ts'),
              // (an alias covers subpaths as `<target>/<subpath>`: each entry is named)
              '@tickwire/client/history': join(process.cwd(), 'packages', 'client', 'src', 'history.ts'),
              ...(react ? await react() : {}),
            },
            define: { 'process.env.NODE_ENV': '"development"' },
            external: ['ws'],
            logLevel: 'warning',
          };
          await build({ ...harnessBuild, entryPoints: [join(HARNESS, 'harness.ts')], outfile: join(webDir, 'harness.js') });
          copyFileSync(join(HARNESS, 'index.html'), join(webDir, 'index.html'));
          // the React example of docs/client-sdk.md, as a reader would bundle it (JSX, automatic runtime)
          await build({ ...harnessBuild, entryPoints: [join(EXAMPLE, 'board.tsx')], outfile: join(webDir, 'board.js'), jsx: 'automatic' });
          copyFileSync(join(EXAMPLE, 'index.html'), join(webDir, 'example.html'));
        },
        engine: {
          // optional auth: anonymous pages as before, and a signed-in user for useAlerts
          auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
          alerts: { flushMs: 0 },
          synthetic: { seed: 3, rate: 3000 },
          throttle: { tiers: [0, 50, 100, 250, 500, 1000, 5000], minMs: 0, batchMs: 50, offscreenMs: 1000 },
        },
      });
      engine = rig.engine!;
    }, 120_000);

    afterAll(() => rig?.close());

    it(`the page runs React ${major}`, async () => {
      await freshPage();
      expect(await page.evaluate(() => (window as unknown as W).harness.reactVersion)).toMatch(new RegExp(`^${major}\\.`));
    });

    it('the example of docs/client-sdk.md runs as written', async () => {
      const doc = readFileSync(join(process.cwd(), 'docs', 'client-sdk.md'), 'utf8');
      const block = /```tsx\n([\s\S]*?)```/.exec(doc.slice(doc.indexOf('## React')));
      expect(block?.[1]).toBe(readFileSync(join(EXAMPLE, 'board.tsx'), 'utf8'));
      // (it type-checks with the project's tsconfig, and against the packed packages in react-package.test.ts)
      await freshPage();
      await page.goto(`http://127.0.0.1:${engine.port}/example.html`);
      await expect.poll(() => page.getByTestId('state').textContent(), { timeout: 20_000 }).toBe('open');
      for (const s of ['AAPL', 'BTC-USD', 'EUR-USD']) await expect.poll(() => page.getByTestId(`price-${s}`).textContent(), { timeout: 20_000 }).toMatch(/^\d/);
      await expect.poll(() => page.getByTestId('tape').locator('li').count(), { timeout: 20_000 }).toBe(5);
      expect(rig.pageErrors).toEqual([]);
    });

    it('ten components on one quote under StrictMode: one connection, one subscribe at the fastest throttle; torn down on unmount', async () => {
      await freshPage();
      const throttles = [250, 500, 100, 1000, 250, 5000, 250, 500, 250, 1000];
      await page.evaluate((t) => (window as unknown as W).harness.mount({ kind: 'quotes', symbol: 'BTC-USD', throttles: t }), throttles);
      await expect.poll(() => page.getByTestId('conn').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
      // every box shows a price
      for (let n = 0; n < throttles.length; n++) await expect.poll(() => page.getByTestId(`quote-${n}`).textContent(), { timeout: 20_000 }).toMatch(/\d/);
      const subs = withChannel(await ops('subscribe'), 'quote:BTC-USD');
      expect(subs).toHaveLength(1);
      expect(subs[0]!.channels).toEqual(['quote:BTC-USD']);
      expect(subs[0]!.throttle).toBe(100);
      expect(await page.evaluate(() => (window as unknown as W).harness.sockets)).toBe(1); // StrictMode did not open a second connection
      expect(await page.evaluate(() => (window as unknown as W).harness.claims())).toEqual({ 'quote:BTC-USD': 10 });

      // the fastest box leaves: the shared subscription slows to the next fastest (250)
      await page.evaluate(() => (window as unknown as W).harness.keepQuotes('BTC-USD', [250, 500]));
      await expect.poll(async () => withChannel(await ops('subscribe'), 'quote:BTC-USD').length, { timeout: 10_000 }).toBe(2);
      expect(withChannel(await ops('subscribe'), 'quote:BTC-USD')[1]!.throttle).toBe(250);
      expect(withChannel(await ops('unsubscribe'), 'quote:BTC-USD').length).toBe(1); // setThrottle re-subscribes
      expect(await page.evaluate(() => (window as unknown as W).harness.claims())).toEqual({ 'quote:BTC-USD': 2 });

      // everything unmounts: the connection closes (the server sees it go)
      expect(await connections()).toBeGreaterThanOrEqual(1);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      await expect.poll(() => page.evaluate(() => (window as unknown as W).harness.openSockets), { timeout: 10_000 }).toBe(0);
      await expect.poll(connections, { timeout: 10_000 }).toBe(0);
      expect(rig.pageErrors).toEqual([]);
    });

    it('StrictMode and unmount leave no page-visibility listener behind; the page state still reaches the server', async () => {
      await freshPage();
      const listeners = (): Promise<number> => page.evaluate(() => (window as unknown as W).harness.pageListeners);
      expect(await listeners()).toBe(0);
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'quotes', symbol: 'AAPL', throttles: [0] }));
      await expect.poll(() => page.getByTestId('conn').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
      expect(await listeners()).toBe(1); // one provider, one listener (StrictMode rendered it twice)
      await page.evaluate(() => (window as unknown as W).harness.setPageHidden(true));
      await expect.poll(async () => (await ops('visibility')).some((f) => f.page === 'hidden'), { timeout: 10_000 }).toBe(true);
      await page.evaluate(() => (window as unknown as W).harness.setPageHidden(false));
      await expect.poll(async () => (await ops('visibility')).some((f) => f.page === 'visible'), { timeout: 10_000 }).toBe(true);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      await expect.poll(() => page.evaluate(() => (window as unknown as W).harness.openSockets), { timeout: 10_000 }).toBe(0);
      expect(await listeners()).toBe(0);
      expect(rig.pageErrors).toEqual([]);
    });

    it('getToken and onError: the newest functions passed are called (a reconnect, a refused channel)', async () => {
      await freshPage();
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'token', version: 1 }));
      await expect.poll(() => page.getByTestId('quote-0').textContent(), { timeout: 20_000 }).toMatch(/\d/);
      expect(await page.evaluate(() => (window as unknown as W).harness.tokenCalls)).toContain(1);
      await page.evaluate(() => (window as unknown as W).harness.rerender({ kind: 'token', version: 2 }));
      const before = await page.evaluate(() => (window as unknown as W).harness.tokenCalls.length);
      await page.evaluate(() => (window as unknown as W).harness.dropSocket());
      await expect.poll(() => page.evaluate(() => (window as unknown as W).harness.tokenCalls.length), { timeout: 20_000 }).toBeGreaterThan(before);
      expect((await page.evaluate(() => (window as unknown as W).harness.tokenCalls)).slice(before)).toEqual([2]);
      await expect.poll(() => page.getByTestId('conn').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
      // a refused channel after the re-render: the newest onError hears it, once
      await expect.poll(() => page.evaluate(() => (window as unknown as W).harness.errorCalls.length), { timeout: 20_000 }).toBeGreaterThan(0);
      expect(await page.evaluate(() => (window as unknown as W).harness.errorCalls)).toEqual([{ version: 2, code: 'UNKNOWN_CHANNEL' }]);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });

    it("a new `token` prop: the same user's goes in band and is the one a reconnect uses; another user's, or none, gets a connection of its own without the old user's data", async () => {
      await freshPage();
      const sign = (sub: string, exp: number | string): Promise<string> =>
        new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
      const notify = async (user: string, id: string): Promise<void> => {
        const r = await fetch(`http://127.0.0.1:${engine.port}/v1/users/${user}/notifications`, {
          method: 'POST',
          headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id, type: 'post', title: id }),
        });
        expect(r.status).toBe(201);
      };
      const shown = async (): Promise<string[]> => ((await page.getByTestId('signed-in').getAttribute('data-notifications')) ?? '').split(',').filter(Boolean);
      const conn = (): Promise<string | null> => page.getByTestId('conn').getAttribute('data-state');
      const sockets = (): Promise<number> => page.evaluate(() => (window as unknown as W).harness.sockets);
      const [alice1, alice2, bob] = await Promise.all([sign('tok-alice', '1h'), sign('tok-alice', '2h'), sign('tok-bob', '1h')]);
      const offered = (): Promise<string[]> => page.evaluate(() => (window as unknown as W).harness.offered.slice());
      await notify('tok-alice', 'alice-1');
      await page.evaluate((t) => (window as unknown as W).harness.mount({ kind: 'signin', token: t }), alice1);
      await expect.poll(shown, { timeout: 20_000 }).toEqual(['alice-1']);
      expect(await offered()).toEqual([alice1]);
      const alerts = page.getByTestId('alerts');
      await expect.poll(() => alerts.getAttribute('data-count'), { timeout: 20_000 }).toBe('0');
      await page.evaluate(() =>
        (window as unknown as W).harness.alerts!.create({ id: 'alice-rule', symbol: 'AAPL', kind: 'price', direction: 'above', level: 1_000_000 }),
      );
      await expect.poll(() => alerts.getAttribute('data-count'), { timeout: 10_000 }).toBe('1');

      // the same user's fresh token: sent in band on the open connection
      await page.evaluate((t) => (window as unknown as W).harness.rerender({ kind: 'signin', token: t }), alice2);
      await expect.poll(async () => (await ops('auth')).map((f) => f.token), { timeout: 10_000 }).toEqual([alice2]);
      expect(await sockets()).toBe(1);
      // the connection drops: the reconnect presents the newest token, not the first (which may have expired by then)
      await page.evaluate(() => (window as unknown as W).harness.dropSocket());
      await expect.poll(offered, { timeout: 20_000 }).toEqual([alice1, alice2]);
      await expect.poll(conn, { timeout: 20_000 }).toBe('open');
      expect(await page.getByTestId('signed-in').getAttribute('data-error')).toBe('');
      expect(await shown()).toEqual(['alice-1']);

      // another user's token: a connection of bob's own, alice's notifications gone from the page
      await page.evaluate((t) => (window as unknown as W).harness.rerender({ kind: 'signin', token: t }), bob);
      await notify('tok-alice', 'alice-2');
      await notify('tok-bob', 'bob-1');
      await expect.poll(shown, { timeout: 20_000 }).toEqual(['bob-1']); // and alice-2, sent before it, never shows
      await expect.poll(connections, { timeout: 10_000 }).toBe(1);
      // bob's alert rules, not alice's
      await expect.poll(() => alerts.getAttribute('data-count'), { timeout: 20_000 }).toBe('0');
      await page.evaluate(() =>
        (window as unknown as W).harness.alerts!.create({ id: 'bob-rule', symbol: 'AAPL', kind: 'price', direction: 'above', level: 1_000_000 }),
      );
      await expect.poll(() => alerts.getAttribute('data-count'), { timeout: 10_000 }).toBe('1');

      // signed out: an anonymous connection, no user data left on the page
      await page.evaluate(() => (window as unknown as W).harness.rerender({ kind: 'signin' }));
      await expect.poll(shown, { timeout: 20_000 }).toEqual([]);
      await expect.poll(conn, { timeout: 20_000 }).toBe('open');
      // no rules listed for nobody, and why: bob's are not left on the page
      await expect.poll(() => alerts.getAttribute('data-error'), { timeout: 20_000 }).toBe('UNAUTHENTICATED');
      expect(await alerts.getAttribute('data-count')).toBe('none');
      await expect.poll(connections, { timeout: 10_000 }).toBe(1);
      // signed in again from anonymous: a connection with the token, whose private channels the anonymous one was refused
      await page.evaluate((t) => (window as unknown as W).harness.rerender({ kind: 'signin', token: t }), bob);
      await expect.poll(shown, { timeout: 20_000 }).toEqual(['bob-1']);
      await expect.poll(connections, { timeout: 10_000 }).toBe(1);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      // the anonymous connection is refused the private channel (onError's default warning): the server holds no user for it
      const privateRefusals = rig.pageErrors.filter((e) => e.includes('"notifications" is a private channel'));
      expect(privateRefusals).toHaveLength(1);
      expect(rig.pageErrors.filter((e) => !privateRefusals.includes(e))).toEqual([]);
    });

    it('a new `client` prop: the hooks move to it (its subscriptions), the old one is given back; from a client to none, a connection of its own, closed on unmount', async () => {
      await freshPage();
      const given = (): Promise<string[][]> => page.evaluate(() => (window as unknown as W).harness.givenSubscriptions());
      const using = (): Promise<number | 'own' | undefined> => page.evaluate(() => (window as unknown as W).harness.storeClient());
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'given', client: 0 }));
      await expect.poll(given, { timeout: 10_000 }).toEqual([['quote:AAPL'], []]);
      // another client: it was ignored (the hooks stayed on the first, the second never subscribed)
      await page.evaluate(() => (window as unknown as W).harness.rerender({ kind: 'given', client: 1 }));
      await expect.poll(using, { timeout: 10_000 }).toBe(1);
      await expect.poll(given, { timeout: 10_000 }).toEqual([[], ['quote:AAPL']]);
      // no client: the provider's own connection (to `url`), which it closes on unmount; the given one is given back
      await page.evaluate(() => (window as unknown as W).harness.rerender({ kind: 'given', client: 'own' }));
      await expect.poll(using, { timeout: 10_000 }).toBe('own');
      await expect.poll(given, { timeout: 10_000 }).toEqual([[], []]);
      await expect.poll(() => page.evaluate(() => (window as unknown as W).harness.openSockets), { timeout: 20_000 }).toBe(1);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      await expect.poll(() => page.evaluate(() => (window as unknown as W).harness.openSockets), { timeout: 10_000 }).toBe(0);
      expect(rig.pageErrors).toEqual([]);
    });

    it('a `token` prop changed while the connection is still opening waits for it: one connection, the new token in band', async () => {
      await freshPage();
      const sign = (exp: string): Promise<string> =>
        new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('tok-frank').setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
      const [first, second] = await Promise.all([sign('1h'), sign('2h')]);
      await page.evaluate(([a, b]) => (window as unknown as W).harness.mountThenToken(a!, b!), [first, second]);
      await expect.poll(async () => (await ops('auth')).map((f) => f.token), { timeout: 20_000 }).toEqual([second]);
      expect(await page.getByTestId('conn').getAttribute('data-state')).toBe('open');
      expect(await page.evaluate(() => (window as unknown as W).harness.offered.slice())).toEqual([first]);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });

    it('a `token` prop that expires: the connection ends closed and says why, without a reconnect per second; a new token connects again', async () => {
      await freshPage();
      const sign = (exp: number | string): Promise<string> =>
        new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('tok-carol').setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));
      const conn = (): Promise<string | null> => page.getByTestId('conn').getAttribute('data-state');
      const error = (): Promise<string | null> => page.getByTestId('signed-in').getAttribute('data-error');
      const sockets = (): Promise<number> => page.evaluate(() => (window as unknown as W).harness.sockets);
      const expiresAt = Math.floor(Date.now() / 1000) + 3;
      await page.evaluate((t) => (window as unknown as W).harness.mount({ kind: 'signin', token: t }), await sign(expiresAt));
      await expect.poll(sockets, { timeout: 20_000 }).toBe(1); // (how long it stays open depends on the machine's load)
      // the gateway ends the connection at `exp` (1008): a reconnect needs a fresh token (protocol.md#close-codes), and there is none
      await expect.poll(conn, { timeout: 20_000 }).toBe('closed');
      expect(await error()).toBe('UNAUTHENTICATED');
      // within the gateway's clock leeway an expired token still passes the upgrade and is closed at once: not tried again and again
      await page.waitForTimeout(3000); // a window in which a reconnect loop would show
      expect(await sockets()).toBeLessThanOrEqual(2);
      expect(await conn()).toBe('closed');
      // the app signs in again: a connection with the new token
      await page.evaluate(async (t) => (window as unknown as W).harness.rerender({ kind: 'signin', token: t }), await sign('1h'));
      await expect.poll(conn, { timeout: 20_000 }).toBe('open');
      expect(await error()).toBe('');
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      // (the gateway's expiry warning goes to onError, console.warn by default: the connection was up)
      expect(rig.pageErrors.filter((e) => !/401|Authentication failed|tickwire: TickwireClientError: token expires in/.test(e))).toEqual([]);
    });

    it('a new symbol or throttle: the old channel is left, the new one joined, and the old value is never shown for the new symbol', async () => {
      await freshPage();
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'symbol', symbol: 'AAPL', throttle: 0 }));
      await expect.poll(() => page.getByTestId('shown').getAttribute('data-channel'), { timeout: 20_000 }).toBe('quote:AAPL');
      await page.evaluate(() => (window as unknown as W).harness.rerender({ kind: 'symbol', symbol: 'MSFT', throttle: 0 }));
      // from the first render after the change, either nothing yet or MSFT
      expect(['', 'quote:MSFT']).toContain(await page.getByTestId('shown').getAttribute('data-channel'));
      await expect.poll(() => page.getByTestId('shown').getAttribute('data-channel'), { timeout: 20_000 }).toBe('quote:MSFT');
      await expect.poll(async () => withChannel(await ops('unsubscribe'), 'quote:AAPL').length, { timeout: 10_000 }).toBe(1);
      expect(withChannel(await ops('subscribe'), 'quote:MSFT')).toHaveLength(1);
      expect(await page.evaluate(() => (window as unknown as W).harness.claims())).toEqual({ 'quote:MSFT': 2 });
      // a slower throttle: re-subscribed at it
      await page.evaluate(() => (window as unknown as W).harness.rerender({ kind: 'symbol', symbol: 'MSFT', throttle: 500 }));
      // the Channel component still asks for every update (throttle 0): the fastest wins, nothing changes
      expect(withChannel(await ops('subscribe'), 'quote:MSFT')).toHaveLength(1);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      await expect.poll(() => page.evaluate(() => (window as unknown as W).harness.openSockets), { timeout: 10_000 }).toBe(0);
      expect(rig.pageErrors).toEqual([]);
    });

    it('list hooks keep their array while the items are unchanged, even when another component keeps more', async () => {
      await freshPage();
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'tapes', symbol: 'BTC-USD', bump: 0 }));
      await expect.poll(async () => Number(await page.getByTestId('tape-50').getAttribute('data-trades')), { timeout: 20_000 }).toBeGreaterThan(5);
      // re-renders from the parent, between and within frames: the list of 5 is a slice of 50
      for (let n = 1; n <= 30; n++) await page.evaluate((b) => (window as unknown as W).harness.rerender({ kind: 'tapes', symbol: 'BTC-USD', bump: b }), n);
      expect(await page.evaluate(() => (window as unknown as W).harness.tapeRenders)).toBeGreaterThan(60);
      expect(await page.evaluate(() => (window as unknown as W).harness.unstableTapes)).toBe(0);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });

    it('unmounting the last component of a channel unsubscribes it, once', async () => {
      await freshPage();
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'quotes', symbol: 'ETH-USD', throttles: [0, 0, 0] }));
      await expect.poll(() => page.getByTestId('quote-2').textContent(), { timeout: 20_000 }).toMatch(/\d/);
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'busy', symbol: 'SOL-USD' }));
      // a new root is a new provider: the old connection closes, its quote never re-subscribed
      await expect.poll(async () => Number(await page.getByTestId('busy').getAttribute('data-received')), { timeout: 20_000 }).toBeGreaterThan(0);
      expect(withChannel(await ops('subscribe'), 'quote:ETH-USD')).toHaveLength(1);
      await page.evaluate(() => (window as unknown as W).harness.keepQuotes('ETH-USD', [0]));
      await expect.poll(async () => withChannel(await ops('unsubscribe'), 'quote:SOL-USD').length, { timeout: 10_000 }).toBe(1);
      expect(withChannel(await ops('unsubscribe'), 'trade:SOL-USD')).toHaveLength(1);
      expect(await page.evaluate(() => (window as unknown as W).harness.claims())).toEqual({ 'quote:ETH-USD': 1 });
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });

    it('batches a busy stream per animation frame: far fewer renders than updates, at most one per frame', async () => {
      await freshPage();
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'busy', symbol: 'BTC-USD' }, false));
      await expect.poll(async () => Number(await page.getByTestId('busy').getAttribute('data-received')), { timeout: 20_000 }).toBeGreaterThan(0);
      const at = (): Promise<{ renders: number; frames: number; received: number; flushed: number }> =>
        page.evaluate(() => {
          const hs = (window as unknown as W).harness;
          const el = document.querySelector<HTMLElement>('[data-testid=busy]')!;
          return { renders: hs.renders.busy ?? 0, frames: hs.frames, received: Number(el.dataset.received), flushed: hs.framesFlushed() };
        });
      const a = await at();
      await expect.poll(async () => (await at()).received - a.received, { timeout: 20_000 }).toBeGreaterThan(300);
      const b = await at();
      const renders = b.renders - a.renders;
      const frames = b.frames - a.frames;
      const updates = b.received - a.received;
      expect(renders).toBeGreaterThan(0);
      // one render per flushed frame (React batches the frame's notifications into one render)
      expect(renders).toBeLessThanOrEqual(b.flushed - a.flushed + 1);
      expect(renders).toBeLessThanOrEqual(frames + 1);
      expect(updates).toBeGreaterThan(renders * 2);
      expect(Number(await page.getByTestId('busy').getAttribute('data-trades'))).toBe(20); // the limit
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });

    it("useAlerts: lists, creates and deletes the user's rules, follows a firing and a reconnect; without a token says why", async () => {
      await freshPage();
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('reacty')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(SECRET));
      await page.evaluate((t) => (window as unknown as W).harness.mount({ kind: 'alerts', token: t }), token);
      const alerts = page.getByTestId('alerts');
      await expect.poll(() => alerts.getAttribute('data-count'), { timeout: 20_000 }).toBe('0');
      // created: in the list at once, as stored (state and defaults from the server)
      await page.evaluate(() =>
        (window as unknown as W).harness.alerts!.create({ id: 'aapl-high', symbol: 'AAPL', kind: 'price', direction: 'above', level: 1_000_000 }),
      );
      await expect.poll(() => alerts.getAttribute('data-count'), { timeout: 10_000 }).toBe('1');
      expect(await page.getByTestId('alert-aapl-high').getAttribute('data-fired')).toBe('0');
      // a refused rule rejects with the server's code and changes nothing
      const refused = await page.evaluate(() =>
        (window as unknown as W).harness.alerts!.create({ id: 'bad', symbol: 'AAPL', kind: 'price', direction: 'above', level: -1 }).then(
          () => 'created',
          (e: { code: string }) => e.code,
        ),
      );
      expect(refused).toBe('ALERT_INVALID');
      expect(await alerts.getAttribute('data-count')).toBe('1');
      // armed by the synthetic feed's trades (refresh() shows the state now), then crossed by ours
      await expect
        .poll(
          async () => {
            await page.evaluate(() => (window as unknown as W).harness.alerts!.refresh());
            return page.getByTestId('alert-aapl-high').getAttribute('data-phase');
          },
          { timeout: 20_000 },
        )
        .toBe('armed');
      const listsBefore = (await ops('alert.list')).length;
      publishTick(engine, 'stock', { k: 'trade', sym: 'AAPL', id: 'react-big-1', p: 1_000_500, s: 1 } as never);
      // the firing's notification makes the hook list again: the rule's state shows it
      await expect.poll(() => page.getByTestId('alert-aapl-high').getAttribute('data-fired'), { timeout: 20_000 }).toBe('1');
      expect((await ops('alert.list')).length).toBeGreaterThan(listsBefore);
      // a reconnect lists again
      const beforeDrop = (await ops('alert.list')).length;
      await page.evaluate(() => (window as unknown as W).harness.dropSocket());
      await expect.poll(async () => (await ops('alert.list')).length, { timeout: 20_000 }).toBeGreaterThan(beforeDrop);
      // deleted: gone from the list
      expect(await page.evaluate(() => (window as unknown as W).harness.alerts!.remove('aapl-high'))).toBe('aapl-high');
      await expect.poll(() => alerts.getAttribute('data-count'), { timeout: 10_000 }).toBe('0');
      // no token: no list, and why
      await page.evaluate(() => (window as unknown as W).harness.mount({ kind: 'alerts' }));
      await expect.poll(() => alerts.getAttribute('data-error'), { timeout: 20_000 }).toBe('UNAUTHENTICATED');
      expect(await alerts.getAttribute('data-count')).toBe('none');
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });

    it('useAlerts: a burst of alert notifications (300 unread replayed at subscribe) asks for the list a few times, not once each', async () => {
      await freshPage();
      for (let n = 0; n < 300; n++) {
        const r = await fetch(`http://127.0.0.1:${engine.port}/v1/users/bursty/notifications`, {
          method: 'POST',
          headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id: `fired-${n}`, type: 'alert', title: `alert ${n}`, body: 'crossed' }),
        });
        expect(r.status).toBe(201);
      }
      const token = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('bursty')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(SECRET));
      await page.evaluate((t) => (window as unknown as W).harness.mount({ kind: 'alerts', token: t }), token);
      await expect.poll(() => page.getByTestId('notification-count').textContent(), { timeout: 20_000 }).toBe('100'); // the hook's default limit
      await expect.poll(() => page.getByTestId('alerts').getAttribute('data-count'), { timeout: 20_000 }).toBe('0');
      const lists = (await ops('alert.list')).length;
      expect(lists).toBeGreaterThan(0);
      expect(lists).toBeLessThanOrEqual(6); // mount (twice under StrictMode), the open, and one or two for the burst
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });

    it('visibility: off-screen rows get the slow tier, a hidden page pauses quotes, coming back brings snapshots', async () => {
      await freshPage();
      const symbols = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'AMZN', 'GOOGL', 'META', 'SPY', 'QQQ'];
      await page.evaluate((s) => (window as unknown as W).harness.mount({ kind: 'rows', symbols: s }), symbols);
      await expect.poll(() => page.getByTestId('conn').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
      // 300 px rows in an 860 px viewport: the first three are on screen
      await expect.poll(() => page.getByTestId('row-META').getAttribute('data-visible'), { timeout: 10_000 }).toBe('false');
      expect(await page.getByTestId('row-AAPL').getAttribute('data-visible')).toBe('true');
      // what the server was told, frame by frame: a subscribe sets the flag (visible:false when the
      // observer reported before the subscribe went out), a visibility request changes it
      const offScreenOnServer = async (): Promise<string[]> => {
        const flag = new Map<string, boolean>();
        for (const f of await sent()) {
          if (f.op === 'subscribe') for (const c of f.channels as string[]) flag.set(c, f.visible !== false);
          if (f.op === 'visibility' && Array.isArray(f.channels)) for (const c of f.channels as string[]) flag.set(c, f.visible === true);
        }
        return [...flag]
          .filter(([, v]) => !v)
          .map(([c]) => c)
          .sort();
      };
      await expect.poll(offScreenOnServer, { timeout: 10_000 }).toEqual(
        symbols
          .slice(3)
          .map((s) => `quote:${s}`)
          .sort(),
      );

      const rate = async (ch: string, ms: number): Promise<number> => {
        const n0 = await page.evaluate((c) => (window as unknown as W).harness.received[c]?.length ?? 0, ch);
        await page.waitForTimeout(ms); // a measuring window, not a wait for a condition
        const n1 = await page.evaluate((c) => (window as unknown as W).harness.received[c]?.length ?? 0, ch);
        return n1 - n0;
      };
      const [onScreen, offScreen] = await Promise.all([rate('quote:AAPL', 3000), rate('quote:QQQ', 3000)]);
      expect(offScreen).toBeLessThanOrEqual(4); // 1000 ms tier: at most one a second (+1 at a window edge)
      expect(onScreen).toBeGreaterThan(offScreen * 2);

      // scroll to the end: QQQ comes on screen, and its next update is a snapshot
      const before = await page.evaluate(() => (window as unknown as W).harness.received['quote:QQQ']!.length);
      await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
      await expect.poll(() => page.getByTestId('row-QQQ').getAttribute('data-visible'), { timeout: 10_000 }).toBe('true');
      await expect.poll(async () => (await offScreenOnServer()).includes('quote:QQQ'), { timeout: 10_000 }).toBe(false);
      await expect
        .poll(() => page.evaluate((b) => (window as unknown as W).harness.received['quote:QQQ']!.slice(b).some((u) => u.snapshot), before), { timeout: 10_000 })
        .toBe(true);

      // the page is hidden: the client says so, and quotes stop
      await page.evaluate(() => (window as unknown as W).harness.setPageHidden(true));
      await expect.poll(async () => (await ops('visibility')).some((f) => f.page === 'hidden'), { timeout: 10_000 }).toBe(true);
      await page.waitForTimeout(300); // frames already in flight land
      expect(await rate('quote:QQQ', 2000)).toBe(0);
      // shown again: a snapshot, then live updates
      const hiddenAt = await page.evaluate(() => (window as unknown as W).harness.received['quote:QQQ']!.length);
      await page.evaluate(() => (window as unknown as W).harness.setPageHidden(false));
      await expect
        .poll(() => page.evaluate((b) => (window as unknown as W).harness.received['quote:QQQ']!.length - b, hiddenAt), { timeout: 10_000 })
        .toBeGreaterThan(3);
      expect(await page.evaluate((b) => (window as unknown as W).harness.received['quote:QQQ']![b]!.snapshot, hiddenAt)).toBe(true);
      await page.evaluate(() => (window as unknown as W).harness.unmount());
      expect(rig.pageErrors).toEqual([]);
    });
  });
}
