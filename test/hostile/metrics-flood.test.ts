import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import type { EngineMetrics } from '../../src/ops/metrics.js';
import { registerMetricsRoute } from '../../src/ops/routes.js';

const uws = createRequire(import.meta.url)('uWebSockets.js') as typeof UWS;

/**
 * GET /metrics is unauthenticated on the gateway port, and one render costs milliseconds (with
 * gateway workers, a gather from every worker thread and a merge on the main thread: about 50
 * renders per second saturated a 2-core box). A flood of scrapes must not buy a render each:
 * concurrent scrapes share one, and renders start at most every 100 ms; a scrape still never gets
 * figures from before its own request.
 */
describe('a flood of GET /metrics shares renders', () => {
  let app: UWS.TemplatedApp;
  let socket: UWS.us_listen_socket;
  let port = 0;
  let metrics: EngineMetrics;
  let renders = 0;
  let scraped = 0;

  beforeAll(async () => {
    metrics = createMetrics({ info: { mode: 'test', roles: 'gateway', version: '0' } }, { defaultMetrics: false });
    const real = metrics.registry.metrics.bind(metrics.registry);
    metrics.registry.metrics = async () => {
      renders++;
      return real();
    };
    // a counter that moves between scrapes: its value shows which render an answer came from
    metrics.registry.registerMetric({
      name: 'test_scrapes_total',
      help: 'renders so far',
      type: 'counter',
      get: async () => ({ name: 'test_scrapes_total', help: 'renders so far', type: 'counter', values: [{ value: ++scraped, labels: {} }], aggregator: 'sum' }),
      reset: () => undefined,
    } as never);
    app = uws.App();
    registerMetricsRoute(app, metrics);
    await new Promise<void>((resolve) =>
      app.listen('127.0.0.1', 0, (s) => {
        socket = s as UWS.us_listen_socket;
        port = uws.us_socket_local_port(s as never);
        resolve();
      }),
    );
  });
  afterAll(() => uws.us_listen_socket_close(socket));

  it('200 concurrent scrapes: every one answered, a few renders', async () => {
    const url = `http://127.0.0.1:${port}/metrics`;
    await fetch(url).then((r) => r.text());
    const before = renders;
    const bodies = await Promise.all(Array.from({ length: 200 }, () => fetch(url).then(async (r) => ({ status: r.status, text: await r.text() }))));
    expect(bodies.every((b) => b.status === 200 && b.text.includes('test_scrapes_total'))).toBe(true);
    expect(renders - before).toBeLessThanOrEqual(5);
  });

  it('a scrape after another gets a new render (never the older figures)', async () => {
    const url = `http://127.0.0.1:${port}/metrics`;
    const value = (t: string): number => Number(/^test_scrapes_total (\d+)/m.exec(t)![1]);
    const a = value(await (await fetch(url)).text());
    const b = value(await (await fetch(url)).text());
    expect(b).toBeGreaterThan(a);
  });
});
