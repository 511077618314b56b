import type { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWorkers } from '../../src/workers/supervisor.js';
import type { GatewayWorkers } from '../../src/workers/supervisor.js';
import { SECRET, token } from '../auth/helpers.js';
import { gatewayWorkerEntry } from '../helpers/processes.js';
import { agentsOnBothWorkers, keepAliveGet } from '../helpers/worker-agents.js';
import type { Got } from '../helpers/worker-agents.js';

/**
 * With `gateway.workers` N, the bar-read budgets (`history.readBarsPerUserPerSec`,
 * `history.readBarsPerGatewayPerSec`) are the process's, whichever workers a user's requests
 * reach. Before, each worker kept its own buckets: a user (or all users together) with
 * connections on both workers read twice the configured rate from the bar store.
 *
 * Each request asks for 10 bars: with a budget of 10 bars a second it costs one second of it.
 */
describe('bar-read budgets across 2 gateway workers', () => {
  let gw: GatewayWorkers;
  const agents: Agent[] = [];

  const get = (agent: Agent, path: string, bearer?: string): Promise<Got> => keepAliveGet(gw.port, agent, path, bearer);
  /** Two keep-alive connections, one held by each worker. */
  const pinned = (): Promise<[Agent, Agent]> => agentsOnBothWorkers(gw.port, agents);

  /** `n` requests of 10 bars one after the other on `agent`: the ms each one was answered at, from `t0`. */
  const chain = async (agent: Agent, bearer: string, n: number, t0: number): Promise<number[]> => {
    const at: number[] = [];
    for (let i = 0; i < n; i++) {
      const r = await get(agent, '/v1/bars?symbol=BTC-USD&interval=1m&limit=10', bearer);
      expect(r.status, r.body).toBe(200);
      at.push(Date.now() - t0);
    }
    return at;
  };

  beforeAll(async () => {
    gw = await startGatewayWorkers({
      overrides: {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        gateway: { workers: 2 },
        auth: { mode: 'required', jwtSecret: SECRET },
        // a user may read 10 bars a second, all users together 20
        history: { readBarsPerUserPerSec: 10, readBarsPerGatewayPerSec: 20 },
      },
      feeds: [],
      ...gatewayWorkerEntry(),
    });
  }, 60_000);
  afterAll(async () => {
    for (const a of agents) a.destroy();
    await gw?.close();
  }, 30_000);

  it("one user's requests on both workers share the user's budget: 6 requests of a second's budget take 5 s", async () => {
    const [w0, w1] = await pinned();
    const alice = await token({ sub: 'alice' });
    const t0 = Date.now();
    const done = (await Promise.all([chain(w0, alice, 3, t0), chain(w1, alice, 3, t0)])).flat().sort((a, b) => a - b);
    // the first passes on the full bucket, each other one waits for a second of refill: the last
    // near 5 s. With a bucket per worker, each worker answered its 3 by 2 s
    expect(done[5]).toBeGreaterThan(4000);
  }, 30_000);

  it("users on both workers share the process's budget: 12 requests of half a second's budget take 5 s", async () => {
    const [w0, w1] = await pinned();
    const users = await Promise.all(['bob', 'carol', 'dave', 'erin'].map((sub) => token({ sub })));
    // the users' own buckets (10 a second) are not what holds them back: 3 requests each, 2 s of it
    const t0 = Date.now();
    const done = (await Promise.all([chain(w0, users[0]!, 3, t0), chain(w0, users[1]!, 3, t0), chain(w1, users[2]!, 3, t0), chain(w1, users[3]!, 3, t0)]))
      .flat()
      .sort((a, b) => a - b);
    // 120 bars at 20 a second after a full bucket of 20: the last near 5 s. With a bucket per
    // worker, each worker's 60 bars were read by 2 s
    expect(done[11]).toBeGreaterThan(4000);
  }, 30_000);
});
