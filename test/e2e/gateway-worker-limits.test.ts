import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine, GatewayWorkerHooks } from '../../src/app/engine.js';
import { SharedConnectionCounts } from '../../src/gateway/connection-counts.js';
import { TestClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';

/**
 * One gateway worker's view of the figures it shares with the other workers (src/workers): the
 * open connections it reports (what the other workers add up in /v1/stats, /health and the
 * connection ceiling) and the per-user counts in shared memory. The other workers read both at
 * any moment, from other threads: a connection reported closed must not still hold its user's
 * slot, or an upgrade on another worker right after (a client that saw the close) is refused.
 */
describe('gateway worker: shared open counts and per-user slots', () => {
  const buffer = SharedConnectionCounts.allocate(16, 2);
  // another worker's view of the same counts, read from the report hook as a peer thread would
  const peer = new SharedConnectionCounts(buffer, 2, 1);
  const reports: { open: number; alice: number }[] = [];
  let engine: Engine;

  beforeAll(async () => {
    const hooks: GatewayWorkerHooks = {
      limits: { counts: new SharedConnectionCounts(buffer, 2, 0) },
      peers: { held: () => 0, report: (open) => reports.push({ open, alice: peer.get('alice') }) },
      stats: async (local) => local,
      health: (h) => h,
      metrics: (m) => m,
    };
    engine = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
        limits: { connectionsPerUser: 2 },
      },
      { roles: { gateway: true, feeds: [], portfolio: false, alerts: false }, env: {}, worker: hooks },
    );
  });
  afterAll(() => engine?.close());

  it('releases the per-user slot of a closed connection before reporting it closed', async () => {
    const t = await token({ sub: 'alice' });
    const url = `ws://127.0.0.1:${engine.port}/v1/stream?token=${t}`;
    const a = await TestClient.connect(url);
    const b = await TestClient.connect(url);
    await expect(TestClient.connect(url)).rejects.toMatchObject({ statusCode: 429 });
    a.close();
    await waitFor(() => reports.at(-1)?.open === 1, { what: 'the close reported' });
    b.close();
    await waitFor(() => reports.at(-1)?.open === 0, { what: 'the second close reported' });
    const closes = reports.filter((r, i) => i > 0 && r.open < reports[i - 1]!.open);
    expect(closes).toHaveLength(2);
    // whenever this worker told its peers how many connections it holds, alice held no more slots
    for (const r of reports) expect(r.alice, JSON.stringify(reports)).toBeLessThanOrEqual(r.open);
    expect(peer.get('alice')).toBe(0);
  });
});
