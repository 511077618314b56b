import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWorkers } from '../../src/workers/supervisor.js';
import { gatewayWorkerEntry } from '../helpers/processes.js';
import type { GatewayWorkers } from '../../src/workers/supervisor.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * With gateway workers, any worker answers GET /v1/stats (the kernel picks one per connection):
 * it adds its own figures to the others' from the shared board. Its own were fresher than the
 * board's copy of them, so two answers in a row from different workers could go backwards (the
 * opened-connections counter read 300, then 287): a counter that decreases is a reset to a
 * scraper. The answering worker now writes its figures to the board first, so any later answer,
 * from any worker, counts at least as much.
 */
describe('/v1/stats counters never go backwards across gateway workers', () => {
  let gw: GatewayWorkers;
  beforeAll(async () => {
    gw = await startGatewayWorkers({
      overrides: { host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { rate: 50 }, gateway: { workers: 2 } },
      ...gatewayWorkerEntry(),
    });
  }, 60_000);
  afterAll(() => gw?.close());

  it('connectionsOpened read while connections open on both workers is non-decreasing', async () => {
    const url = `ws://127.0.0.1:${gw.port}/v1/stream`;
    const clients: TestClient[] = [];
    let done = false;
    // connections keep opening (spread over both workers by the kernel) while stats are read
    const opening = (async () => {
      for (let i = 0; i < 120 && !done; i++) clients.push(await TestClient.connect(url));
    })();
    const seen: number[] = [];
    while (seen.length < 300) {
      // a new HTTP connection each time, so both workers answer
      const s = (await (await fetch(`http://127.0.0.1:${gw.port}/v1/stats`, { headers: { connection: 'close' } })).json()) as {
        gateway: { connectionsOpened: number };
      };
      seen.push(s.gateway.connectionsOpened);
    }
    done = true;
    await opening;
    for (const c of clients) c.close();
    const backwards = seen.flatMap((v, i) => (i > 0 && v < seen[i - 1]! ? [`${seen[i - 1]} -> ${v} at read ${i}`] : []));
    expect(backwards).toEqual([]);
    expect(seen.at(-1)!).toBeGreaterThan(0);
  }, 120_000);
});
