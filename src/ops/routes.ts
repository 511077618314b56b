import type { TemplatedApp } from 'uWebSockets.js';
import { sendJson, sendText } from '../http/http.js';
import type { EngineMetrics } from './metrics.js';

/** GET /metrics on the gateway's uWS app (registered through `GatewayOptions.routes`). */
export function registerMetricsRoute(app: TemplatedApp, metrics: EngineMetrics): void {
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
        if (!aborted) sendJson(res, 500, { error: 'METRICS', message: `collecting metrics failed: ${(err as Error).message}` });
      },
    );
  });
}
