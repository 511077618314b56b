import { afterAll, describe, expect, it } from 'vitest';
import { startGatewayWorkers } from '../../src/workers/supervisor.js';
import type { GatewayWorkers } from '../../src/workers/supervisor.js';
import { gatewayWorkerEntry } from '../helpers/processes.js';
import { TestClient } from '../helpers/ws-client.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';

/**
 * An upgrade that waits for its token to be verified is answered later, outside uWS's upgrade
 * handler. There the gateway must not upgrade inside `res.cork`: uWebSockets.js 20.30's cork goes
 * on through the HTTP response after its callback, which the upgrade has freed (the socket is
 * reallocated as a WebSocket), and now and then that closed a connection (1006) right after its
 * welcome, or an older one. Its per-user slot was then free again, so a user's racing upgrades
 * got one more connection through than `limits.connectionsPerUser`.
 *
 * The use after free shows at random, and here mostly in the first upgrades of gateway workers
 * started in a process that already ran gateway workers, so this test starts gateways afresh:
 * GENERATIONS times two gateways of two workers each. Every round, on each gateway, one user
 * races 3x its limit and eight others open their limit, and no connection the gateway opened may
 * close before the test closes it. Not deterministic: on this machine (load 13-25) the old code
 * failed it 2 runs of 2 (1 or 2 connections closed 1006, in the first round of the first or second
 * generation) and earlier shapes of it 5 of 7; the fixed code passed every run (5).
 */
const PER_USER = 6;
const GATEWAYS = 2;
const GENERATIONS = 5;
const ROUNDS = 2;
const OTHERS = 8;

describe('upgrades answered after the token check (gateway workers)', () => {
  const gateways: GatewayWorkers[] = [];
  const clients: TestClient[] = [];
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.all(gateways.map((g) => g.close()));
  }, 60_000);

  it('keeps every connection it upgraded open until the client closes it, and a user at its limit', async () => {
    const overrides = {
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      synthetic: { rate: 400 },
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      limits: { connectionsPerUser: PER_USER },
      gateway: { workers: 2 },
    };
    const racer = await token({ sub: 'alice' });
    const others = await Promise.all(Array.from({ length: OTHERS }, (_, i) => token({ sub: `user-${i}` })));
    const connect = (gw: GatewayWorkers, t: string): Promise<TestClient | number> =>
      TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream?token=${t}`).then(
        (c) => {
          clients.push(c);
          return c;
        },
        (err: { statusCode?: number }) => err.statusCode ?? -1,
      );
    const openOn = async (gw: GatewayWorkers): Promise<number> =>
      ((await (await fetch(`http://127.0.0.1:${gw.port}/v1/stats`)).json()) as { connections: number }).connections;

    let upgraded = 0;
    for (let generation = 0; generation < GENERATIONS; generation++) {
      await Promise.all(gateways.splice(0).map((g) => g.close()));
      gateways.push(...(await Promise.all(Array.from({ length: GATEWAYS }, () => startGatewayWorkers({ overrides, ...gatewayWorkerEntry() })))));
      for (let i = 0; i < ROUNDS; i++) {
        const round = `${generation}.${i}`;
        const results = await Promise.all(
          gateways.map(async (gw) => {
            const [race, rest] = await Promise.all([
              Promise.all(Array.from({ length: PER_USER * 3 }, () => connect(gw, racer))),
              Promise.all(others.flatMap((t) => Array.from({ length: PER_USER }, () => connect(gw, t)))),
            ]);
            return { race, rest };
          }),
        );
        upgraded += clients.length;
        await quietFor(100, 'a connection opened this round closing by itself');
        const dropped = clients.filter((c) => c.closeCode !== undefined).map((c) => c.closeCode);
        expect({ round, upgraded, dropped }).toEqual({ round, upgraded, dropped: [] });
        for (const { race, rest } of results) {
          expect({ round, racer: race.filter((r) => r instanceof TestClient).length, refused: race.filter((r) => r === 429).length }).toEqual({
            round,
            racer: PER_USER,
            refused: PER_USER * 2,
          });
          expect(rest.filter((r) => !(r instanceof TestClient))).toEqual([]);
        }
        for (const c of clients.splice(0)) c.close();
        for (const gw of gateways) await waitFor(async () => (await openOn(gw)) === 0, { what: `round ${round}: every connection closed` });
      }
    }
  }, 300_000);
});
