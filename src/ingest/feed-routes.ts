import type { TemplatedApp } from 'uWebSockets.js';
import { sendJson } from '../http/http.js';
import type { FeedHealthView } from './feed-health-view.js';

/**
 * `GET /v1/feeds`: health of every feed known on the bus, and failover pairs.
 * `GET /v1/feeds/:id`: one feed (404 when no such feed has reported).
 */
export function registerFeedRoutes(app: TemplatedApp, view: FeedHealthView): void {
  app.get('/v1/feeds', (res) => {
    sendJson(res, 200, { feeds: view.list(), failover: view.failover(), t: Date.now() }, { 'cache-control': 'no-store' });
  });
  app.get('/v1/feeds/:id', (res, req) => {
    const raw = req.getParameter(0) ?? '';
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      sendJson(res, 400, { error: 'BAD_REQUEST', field: 'id', message: `feed id "${raw.slice(0, 64)}" in the path is not valid percent-encoding` });
      return;
    }
    const feed = view.get(id);
    if (feed) sendJson(res, 200, feed, { 'cache-control': 'no-store' });
    else sendJson(res, 404, { error: 'NOT_FOUND', message: `no feed "${id}" has reported health (is it running?)` });
  });
}
