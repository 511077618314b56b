import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { loadConfig } from '../../src/core/config.js';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { Gateway } from '../../src/gateway/server.js';
import { createMetrics } from '../../src/ops/metrics.js';
import { sumMetrics } from '../../src/workers/aggregate.js';
import { registerMetricsRoute } from '../../src/ops/routes.js';
import { TickAgeHistogram } from '../../src/ops/tick-age.js';
import { TestClient } from '../helpers/ws-client.js';
import { parseProm, scrape, series } from './prom-text.js';
import { waitFor } from '../helpers/wait.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };

describe('GET /metrics after real traffic (embedded engine)', () => {
  let engine: Engine;
  let base = '';
  const clients: TestClient[] = [];
  beforeAll(async () => {
    engine = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        synthetic: { seed: 3, rate: 1000, symbols: ['AAPL', 'BTC-USD', 'EUR-USD'] },
        ops: { statsLogSec: 0 },
      },
      { env: {} },
    );
    base = `http://127.0.0.1:${engine.port}`;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await engine?.close();
  });

  it('exposes connections, subscriptions by kind, frames and bytes out, conflation, errors, bus, feeds, tick age and event-loop lag', async () => {
    const ws = `ws://127.0.0.1:${engine.port}/v1/stream`;
    const a = await TestClient.connect(ws);
    const b = await TestClient.connect(ws, { encoding: 'json' });
    const c = await TestClient.connect(ws);
    clients.push(a, b, c);
    expect((await a.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:AAPL'], throttle: 0 })).subscribed).toHaveLength(2);
    expect((await a.request({ op: 'subscribe', id: 2, channels: ['ticker:BTC-USD'], throttle: 250 })).subscribed).toHaveLength(1);
    // a slow tier on a busy channel: quotes get conflated
    expect((await b.request({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD', 'quote:AAPL'], throttle: 1000 })).subscribed).toHaveLength(2);
    // protocol errors by code
    c.send({ op: 'dance', id: 9 });
    await c.waitFor((f) => f.op === 'error' && f.code === 'UNKNOWN_OP');
    c.send({ op: 'subscribe', id: 10, channels: 'quote:AAPL' });
    await c.waitFor((f) => f.op === 'error' && f.code === 'BAD_REQUEST');

    await a.waitForCount((f) => f.op === 'data' && f.ch === 'trade:AAPL', 5, 20_000);
    await b.waitForCount((f) => f.op === 'data' && f.ch === 'quote:BTC-USD' && !f.snapshot, 2, 20_000);

    // conflation shows up once a 1 s window with several quotes has been emitted; feed health
    // reaches the gateway through the bus (reported every second)
    await waitFor(
      async () => {
        const m = (await scrape(`${base}/metrics`)).metrics;
        return series(m, 'tickwire_updates_conflated_total') > 0 && m.get('tickwire_feed_messages_total{feed="synthetic"}')! > 0;
      },
      { what: 'conflated updates and feed health in /metrics', timeout: 10_000, interval: 100 },
    );
    const r = await scrape(`${base}/metrics`);
    expect(r.status).toBe(200);
    expect(r.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = r.metrics;

    expect(series(m, 'tickwire_info{mode="embedded",roles="gateway,feed:synthetic,portfolio,alerts",version="0.1.0"}')).toBe(1);
    expect(series(m, 'tickwire_connections')).toBe(3);
    expect(series(m, 'tickwire_connections_opened_total')).toBe(3);
    expect(series(m, 'tickwire_subscriptions{kind="quote"}')).toBe(3);
    expect(series(m, 'tickwire_subscriptions{kind="trade"}')).toBe(1);
    expect(series(m, 'tickwire_subscriptions{kind="ticker"}')).toBe(1);
    expect(series(m, 'tickwire_upstream_channels')).toBe(4);
    expect(series(m, 'tickwire_subscribes_total')).toBe(5);
    expect(series(m, 'tickwire_updates_in_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_updates_out_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_updates_conflated_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_updates_dropped_total{reason="bad_payload"}')).toBe(0);
    expect(series(m, 'tickwire_frames_out_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_frames_encoded_total')).toBeGreaterThan(0);
    // bytes out at least the frames the clients received through topics
    const received = [a, b].reduce((n, cl) => n + cl.raw.reduce((s, x) => s + x.data.byteLength, 0), 0);
    expect(series(m, 'tickwire_bytes_out_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_bytes_out_total')).toBeLessThanOrEqual(received + 1_000_000);
    expect(series(m, 'tickwire_protocol_errors_total{code="UNKNOWN_OP"}')).toBe(1);
    expect(series(m, 'tickwire_protocol_errors_total{code="BAD_REQUEST"}')).toBe(1);
    expect(series(m, 'tickwire_slow_consumer_closes_total')).toBe(0);
    expect(series(m, 'tickwire_bus_connected')).toBe(1);
    expect(series(m, 'tickwire_bus_messages_in_total')).toBeGreaterThanOrEqual(series(m, 'tickwire_updates_in_total'));
    expect(series(m, 'tickwire_bus_messages_out_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_ticks_published_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_feed_up{feed="synthetic"}')).toBe(1);
    expect(series(m, 'tickwire_feed_state{feed="synthetic",state="connected"}')).toBe(1);
    expect(series(m, 'tickwire_feed_messages_total{feed="synthetic"}')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_store_ready')).toBe(1);
    expect(series(m, 'tickwire_executions_log_ready')).toBe(1);
    // tick age: a histogram with cumulative buckets whose +Inf bucket is the count
    const count = series(m, 'tickwire_tick_age_seconds_count');
    expect(count).toBeGreaterThan(0);
    expect(series(m, 'tickwire_tick_age_seconds_bucket{le="+Inf"}')).toBe(count);
    expect(series(m, 'tickwire_tick_age_seconds_sum')).toBeGreaterThanOrEqual(0);
    expect(series(m, 'tickwire_tick_age_seconds_bucket{le="0.001"}')).toBeLessThanOrEqual(series(m, 'tickwire_tick_age_seconds_bucket{le="1"}'));
    // prom-client default metrics, event-loop lag among them
    expect(series(m, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    expect(m.has('process_resident_memory_bytes')).toBe(true);
  });

  it('serves /health, /ready and /v1/stats', async () => {
    const health = await (await fetch(`${base}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', mode: 'embedded', bus: 'connected' });
    const ready = await fetch(`${base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, checks: { bus: true, store: true, accepting: true } });
    const stats = await (await fetch(`${base}/v1/stats`)).json();
    expect(stats.connections).toBe(3);
    const byChannel = Object.fromEntries(stats.channels.map((c: { channel: string; subscribers: number }) => [c.channel, c.subscribers]));
    expect(byChannel).toMatchObject({ 'quote:AAPL': 2, 'trade:AAPL': 1, 'ticker:BTC-USD': 1, 'quote:BTC-USD': 1 });
  });

  it('counts closed connections and drops their subscriptions', async () => {
    for (const c of clients.splice(0)) {
      c.close();
      await c.waitClose();
    }
    const m = await waitFor(
      async () => {
        const got = (await scrape(`${base}/metrics`)).metrics;
        return series(got, 'tickwire_connections') === 0 ? got : undefined;
      },
      { what: 'tickwire_connections 0', timeout: 5000, interval: 50 },
    );
    expect(series(m, 'tickwire_connections')).toBe(0);
    expect(series(m, 'tickwire_connections_closed_total')).toBe(3);
    // channels linger upstream for gateway.upstreamReleaseMs, with no subscribers
    const subs = [...m.entries()].filter(([k]) => k.startsWith('tickwire_subscriptions{'));
    expect(subs.every(([, v]) => v === 0)).toBe(true);
  });
});

describe('auth failures by reason', () => {
  it('counts refused upgrades per reason code', async () => {
    const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', port: 0 } });
    const gateway = new Gateway({
      config,
      bus: new MemoryBus(),
      resolvers: [],
      log: silent,
      authenticator: {
        mode: 'required',
        async authenticate(token) {
          if (token === 'old') return { ok: false, reason: 'token expired', code: 'expired' };
          return { ok: false, reason: 'signature does not verify', code: 'bad_signature' };
        },
      },
      routes: (app, gw) => registerMetricsRoute(app, createMetrics({ gateway: gw }, { defaultMetrics: false })),
    });
    const port = await gateway.listen('127.0.0.1', 0);
    try {
      const url = `ws://127.0.0.1:${port}/v1/stream`;
      for (const headers of [{ authorization: 'Bearer old' }, { authorization: 'Bearer old' }, { authorization: 'Bearer forged' }]) {
        await expect(TestClient.connect(url, { headers })).rejects.toMatchObject({ statusCode: 401 });
      }
      await expect(TestClient.connect(`${url}?token=forged`)).rejects.toMatchObject({ statusCode: 401 });
      const m = (await scrape(`http://127.0.0.1:${port}/metrics`)).metrics;
      expect(series(m, 'tickwire_auth_failures_total{reason="expired"}')).toBe(2);
      expect(series(m, 'tickwire_auth_failures_total{reason="bad_signature"}')).toBe(2);
      expect(series(m, 'tickwire_connections_opened_total')).toBe(0);
      // auth reasons are not mixed into protocol errors
      expect([...m.keys()].filter((k) => k.startsWith('tickwire_protocol_errors_total{'))).toEqual([]);
    } finally {
      gateway.close();
    }
  });
});

describe('TickAgeHistogram', () => {
  it('buckets ages cumulatively, clamps negative ages (clock skew) to zero and skips bars and non-market channels', async () => {
    const h = new TickAgeHistogram('age_test', [0.01, 0.1, 1]);
    for (const ms of [5, 50, 500, 5000, -20]) h.observeMs(ms);
    const spec = (mode: 'latest' | 'bar', subject: string) => ({ key: 'k', name: 'n', subject, mode, decode: () => undefined });
    h.onUpdate(spec('bar', 'md.stock.bar-1s.AAPL'), { t: Date.now() - 50_000 });
    h.onUpdate(spec('latest', 'user.u1.portfolio'), { t: Date.now() - 50_000 });
    h.onUpdate(spec('latest', 'md.stock.quote.AAPL'), { t: Date.now() - 50_000 });
    const metric = h.metric() as { get(): Promise<{ values: { metricName: string; labels: { le?: string | number }; value: number }[] }> };
    const values = (await metric.get()).values;
    const bucket = (le: string | number) => values.find((v) => v.metricName === 'age_test_bucket' && v.labels.le === le)!.value;
    expect([bucket(0.01), bucket(0.1), bucket(1), bucket('+Inf')]).toEqual([2, 3, 4, 6]);
    expect(values.find((v) => v.metricName === 'age_test_count')!.value).toBe(6);
    expect(values.find((v) => v.metricName === 'age_test_sum')!.value).toBeGreaterThanOrEqual(55.5);
  });
});

describe('a process exports the series of the parts it runs, not zeros for the others', () => {
  // a feed, portfolio or alerts process has no gateway and (without REDIS_URL) no last-value store:
  // it used to export tickwire_connections 0, tickwire_store_ready 0 (an alert on a store that
  // does not exist) and tickwire_executions_log_ready 0 (documented as absent there)
  const names = (text: string): Set<string> => new Set([...parseProm(text).keys()].map((k) => k.split('{')[0]!));

  it('no gateway, store or executions log: none of their series', async () => {
    const m = createMetrics({ info: { mode: 'nats', roles: 'feed:synthetic', version: 'test' }, busConnected: () => true }, { defaultMetrics: false });
    const present = names(await m.render());
    for (const absent of [
      'tickwire_connections',
      'tickwire_connections_max',
      'tickwire_updates_in_total',
      'tickwire_bytes_out_total',
      'tickwire_store_ready',
      'tickwire_store_pending_keys',
      'tickwire_executions_log_ready',
      'tickwire_ticks_published_total',
    ])
      expect(present.has(absent), absent).toBe(false);
    expect(present.has('tickwire_bus_connected')).toBe(true);
    expect(present.has('tickwire_info')).toBe(true);
  });

  it('a part added after the metrics were created (the feeds start after them) is exported from then on', async () => {
    const sources: Parameters<typeof createMetrics>[0] = { busConnected: () => true };
    const m = createMetrics(sources, { defaultMetrics: false });
    expect(names(await m.render()).has('tickwire_store_ready')).toBe(false);
    await new Promise((r) => setTimeout(r, 120)); // renders are at least RENDER_MIN_GAP_MS apart
    sources.store = { ready: true } as NonNullable<typeof sources.store>;
    sources.executionsLog = { kind: 'memory', ready: true };
    const after = parseProm(await m.render());
    expect(series(after, 'tickwire_store_ready')).toBe(1);
    expect(series(after, 'tickwire_executions_log_ready')).toBe(1);
  });
});

describe('tickwire_info of a process with gateway workers', () => {
  it('is one series naming every role of the process, as without workers', async () => {
    // it was two: roles="gateway" from the workers and roles="feed:synthetic,portfolio,alerts"
    // from the main thread, so counting tickwire_info counted such a process twice
    const info = (roles: string) => ({ info: { mode: 'embedded', roles, version: 'test' } });
    const worker = createMetrics(info('gateway'), { defaultMetrics: false });
    const main = createMetrics(info('feed:synthetic,portfolio,alerts'), { defaultMetrics: false });
    const json = async (m: ReturnType<typeof createMetrics>) => (await m.registry.getMetricsAsJSON()) as never;
    const { text } = await sumMetrics(await json(main), [await json(worker), await json(createMetrics(info('gateway'), { defaultMetrics: false }))]);
    const series = [...parseProm(text).entries()].filter(([k]) => k.startsWith('tickwire_info{'));
    expect(series).toEqual([['tickwire_info{mode="embedded",roles="gateway,feed:synthetic,portfolio,alerts",version="test"}', 1]]);
  });
});
