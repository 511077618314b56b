import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BusAlertsClient } from '../../src/alerts/alert-api.js';
import type { BusRequests } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { loadConfig } from '../../src/core/config.js';
import { Gateway } from '../../src/gateway/server.js';
import type { EngineMetrics } from '../../src/ops/metrics.js';
import { OpsServer } from '../../src/ops/ops-server.js';
import { registerMetricsRoute } from '../../src/ops/routes.js';
import { BusPortfolioClient } from '../../src/portfolio/portfolio-api.js';

/**
 * HTTP errors answer a stable code and a fixed message; what failed inside (a Redis or NATS
 * error with a connection string, a stack frame with a file path) goes to the log only.
 */
const INTERNAL = 'redis://ops:hunter2@10.1.2.3:6379 ECONNREFUSED at Object.<anonymous> (/srv/tickwire/dist/x.js:1:1)';
const leaks = (text: string): boolean => /hunter2|10\.1\.2\.3|\/srv\/tickwire|ECONNREFUSED/.test(text);

const failingMetrics = { contentType: 'text/plain', render: () => Promise.reject(new Error(INTERNAL)) } as unknown as EngineMetrics;

describe('gateway routes: /v1/stats and /metrics when collecting fails', () => {
  const logged: object[] = [];
  const log = { info() {}, warn: (o: object) => void logged.push(o), error: (o: object) => void logged.push(o), debug() {} };
  let gateway: Gateway;
  let port = 0;
  beforeAll(async () => {
    gateway = new Gateway({
      config: loadConfig({ env: {}, overrides: { host: '127.0.0.1', port: 0 } }),
      bus: new MemoryBus(),
      resolvers: [],
      log,
      stats: () => Promise.reject(new Error(INTERNAL)),
      routes: (app) => registerMetricsRoute(app, failingMetrics, log),
    });
    port = await gateway.listen('127.0.0.1', 0);
  });
  afterAll(() => gateway.close());

  it('GET /v1/stats: 503 STATS with a fixed message; the error is logged', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/stats`);
    const text = await res.text();
    expect(res.status).toBe(503);
    expect(leaks(text), text).toBe(false);
    expect(JSON.parse(text).error).toBe('STATS');
    expect(res.headers.get('retry-after')).toBe('5');
    expect(logged.some((o) => (o as { err?: Error }).err?.message === INTERNAL)).toBe(true);
  });

  it('GET /metrics: 500 METRICS with a fixed message', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(leaks(text), text).toBe(false);
    expect(JSON.parse(text).error).toBe('METRICS');
  });
});

describe('ops server (tickwire feed): /metrics when collecting fails', () => {
  let ops: OpsServer;
  beforeAll(async () => {
    ops = await OpsServer.listen({ host: '127.0.0.1', port: 0, ready: () => ({ ready: true, checks: {} }), metrics: failingMetrics });
  });
  afterAll(() => ops.close());

  it('500 METRICS with a fixed message', async () => {
    const res = await fetch(`http://127.0.0.1:${ops.port}/metrics`);
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(leaks(text), text).toBe(false);
    expect(JSON.parse(text).error).toBe('METRICS');
  });
});

describe('service API and alerts over the bus: a bus error is not the answer', () => {
  const requests: BusRequests = { request: () => Promise.reject(new Error(INTERNAL)), serve: () => () => undefined };

  it('portfolio: 503 PORTFOLIO_UNAVAILABLE, the bus error kept as the cause', async () => {
    const err = (await new BusPortfolioClient(requests, 100).getPositions('alice').catch((e: unknown) => e)) as Error & { status: number; code: string };
    expect([err.status, err.code]).toEqual([503, 'PORTFOLIO_UNAVAILABLE']);
    expect(leaks(err.message), err.message).toBe(false);
    expect((err.cause as Error).message).toBe(INTERNAL);
  });

  it('alerts: 503 ALERTS_UNAVAILABLE, the bus error kept as the cause', async () => {
    const err = (await new BusAlertsClient(requests, 100).list('alice').catch((e: unknown) => e)) as Error & {
      status: number;
      code: string;
    };
    expect([err.status, err.code]).toEqual([503, 'ALERTS_UNAVAILABLE']);
    expect(leaks(err.message), err.message).toBe(false);
    expect((err.cause as Error).message).toBe(INTERNAL);
  });
});
