import type { TemplatedApp } from 'uWebSockets.js';
import { sendJson, sendText } from '../http/http.js';
import type { EngineMetrics } from './metrics.js';

/** What a failed HTTP request tells the client: a stable code; what failed goes to the log. */
export const METRICS_FAILED = { error: 'METRICS', message: 'collecting metrics failed (the error is logged): retry' } as const;

/**
 * GET /metrics on the gateway's uWS app (registered through `GatewayOptions.routes`). A failed
 * collection answers 500 METRICS with a fixed message: the error (a store's connection string, a
 * file path) goes to `log`, never to the scraper.
 */
export function registerMetricsRoute(app: TemplatedApp, metrics: EngineMetrics, log?: { error(obj: object, msg?: string): void }): void {
  app.get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    metrics.render().then(
      (text) => {
        if (!aborted) sendText(res, 200, text, metrics.contentType, { 'cache-control': 'no-store' });
      },
      (err: unknown) => {
        log?.error({ err }, 'collecting metrics failed: answered 500');
        if (!aborted) sendJson(res, 500, METRICS_FAILED);
      },
    );
  });
}
