import type { Agent } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SECRET } from '../auth/helpers.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';
import { agentsOnBothWorkers, keepAliveGet } from '../helpers/worker-agents.js';
import type { Got } from '../helpers/worker-agents.js';

/**
 * With `gateway.workers` N, one address gets each per-IP budget once, whichever worker threads
 * its connections reach (the kernel spreads them by a hash of their addresses): the costly HTTP
 * routes' (`limits.httpRequestsPerIpPerSec`) and the new connections' (checked before the token
 * is verified). Before, each worker kept its own HTTP buckets: N times the burst and the rate.
 */
describe('per-IP limits across 2 gateway workers', () => {
  const gw = embeddedWorkers({
    auth: { mode: 'required', jwtSecret: SECRET },
    // a refill of one per 100 s keeps the counts exact on a loaded machine; loopback is the attacker
    limits: { httpRequestsPerIpPerSec: 0.01, httpBurstPerIp: 3, connectionsPerIpPerSec: 0.01, connectionBurstPerIp: 3, exemptIps: [] },
  });
  const agents: Agent[] = [];

  const get = (agent: Agent, path: string): Promise<Got> => keepAliveGet(gw.port, agent, path);

  afterAll(() => {
    for (const a of agents) a.destroy();
  });

  it('costly HTTP requests: one burst for the address, over keep-alive connections held by both workers', async () => {
    // one keep-alive connection on each worker
    const pinned = await agentsOnBothWorkers(gw.port, agents);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await get(pinned[i % 2]!, '/v1/auth/check?token=abc.def.ghi')).status);
    expect(statuses.filter((s) => s !== 429)).toHaveLength(3);
    expect(statuses.slice(3)).toEqual([429, 429, 429, 429, 429]);
  });

  it('new connections: one burst for the address, and junk tokens beyond it are refused before they are verified', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      // a fresh TCP connection each: the kernel hands them to either worker
      const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/v1/stream`, ['tickwire.v1.json'], { headers: { authorization: 'Bearer abc.def.ghi' } });
      statuses.push(
        await new Promise<number>((resolve, reject) => {
          ws.once('unexpected-response', (_req, res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          ws.once('open', () => {
            ws.close();
            resolve(101);
          });
          ws.once('error', reject);
        }),
      );
    }
    expect(statuses).toEqual([401, 401, 401, 429, 429, 429, 429, 429]);
  });
});
