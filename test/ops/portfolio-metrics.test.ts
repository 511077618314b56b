import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { createMetrics } from '../../src/ops/metrics.js';
import { api, SECRET, SERVICE_TOKEN, testEngine } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';
import { parseProm, scrape, series } from './prom-text.js';

/**
 * The portfolio service on /metrics: executions applied, books held and unsaved, failed saves,
 * books marked incomplete (the execution log no longer holds what a book needs: GET 409 until a
 * PUT), evictions, and books rebuilt from a PUT's record (the store had lost them). Before, nothing of the portfolio service was exported, so an operator could
 * not alert on a position store that stopped taking saves or on a book marked incomplete. Only
 * where the service runs: a process without it has none of these series.
 */
const PORTFOLIO_SERIES = [
  'tickwire_portfolio_executions_applied_total',
  'tickwire_portfolio_books_held',
  'tickwire_portfolio_unsaved_users',
  'tickwire_portfolio_save_failures_total',
  'tickwire_portfolio_books_marked_incomplete_total',
  'tickwire_portfolio_books_evicted_total',
  'tickwire_portfolio_books_rebuilt_from_put_total',
];

let engine: Engine;
beforeAll(async () => {
  engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
});
afterAll(() => engine?.close());

describe('portfolio metrics', () => {
  it('count the executions applied and the books held, with no failed save or incomplete book', async () => {
    for (const [i, qty] of [5, 3].entries()) {
      const r = await api(engine, 'POST', '/v1/executions', { user: 'mia', id: `pm-${i}`, order: 'o', sym: 'AAPL', side: 'buy', qty, p: 100, t: Date.now() });
      expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
    }
    let m = new Map<string, number>();
    await waitFor(
      async () => {
        m = (await scrape(`http://127.0.0.1:${engine.port}/metrics`)).metrics;
        return m.get('tickwire_portfolio_executions_applied_total') === 2 && m.get('tickwire_portfolio_unsaved_users') === 0;
      },
      { what: 'two executions applied and saved, on /metrics', timeout: 10_000, interval: 100 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${PORTFOLIO_SERIES.map((k) => `${k}=${m.get(k)}`).join(' ')}`);
    });
    expect(series(m, 'tickwire_portfolio_books_held')).toBe(1);
    expect(series(m, 'tickwire_portfolio_save_failures_total')).toBe(0);
    expect(series(m, 'tickwire_portfolio_books_marked_incomplete_total')).toBe(0);
    expect(series(m, 'tickwire_portfolio_books_evicted_total')).toBe(0);
    expect(series(m, 'tickwire_portfolio_books_rebuilt_from_put_total')).toBe(0);
  });

  it('are absent where the portfolio service does not run', async () => {
    const m = createMetrics({ info: { mode: 'nats', roles: 'gateway', version: 'test' }, busConnected: () => true }, { defaultMetrics: false });
    const present = new Set([...parseProm(await m.render()).keys()].map((k) => k.split('{')[0]!));
    for (const name of PORTFOLIO_SERIES) expect(present.has(name), name).toBe(false);
  });
});
