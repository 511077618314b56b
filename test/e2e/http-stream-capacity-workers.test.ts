import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SERVICE_TOKEN, keyPair, token } from '../auth/helpers.js';
import { spawnListening } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';

/**
 * gateway.maxConnections binds across gateway workers: a connection being verified holds its
 * slot for every worker (docs/operations.md, the connection ceiling). An HTTP stream whose token
 * is being checked held it only on its own worker: the other worker did not see it, so a
 * connection there took the slot meanwhile and the ceiling was overshot (two connections at
 * maxConnections 1). The token check is held here by a JWKS fetch the test answers late; auth
 * mode optional, so WebSocket upgrades without a token need no check and reach either worker.
 */
let proc: TickwireProcess;
let port: number;
const held: (() => void)[] = [];
let jwk: Record<string, unknown>;
let signKey: CryptoKey;
const jwks = createServer((_req, res) => {
  held.push(() => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [{ ...jwk, kid: 'k1', alg: 'ES256', use: 'sig' }] }));
  });
});

function upgrade(): Promise<{ status: number; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['tickwire.v1.json']);
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, ws });
    });
    ws.once('error', reject);
  });
}

beforeAll(async () => {
  const kp = await keyPair('ES256');
  jwk = kp.publicJwk;
  signKey = kp.privateKey;
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  ({ proc, port } = await spawnListening(['start'], {
    HOST: '127.0.0.1',
    TICKWIRE_GATEWAY_WORKERS: '2',
    TICKWIRE_GATEWAY_MAX_CONNECTIONS: '1',
    TICKWIRE_AUTH_MODE: 'optional',
    TICKWIRE_JWT_JWKS_URL: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
    TICKWIRE_SERVICE_TOKEN: SERVICE_TOKEN,
  }));
}, 60_000);
afterAll(async () => {
  for (const answer of held.splice(0)) answer();
  await proc?.stop();
  jwks.closeAllConnections();
  await new Promise((r) => jwks.close(r));
});

describe('an HTTP stream being verified holds its slot on every gateway worker', () => {
  it('no upgrade on either worker takes the last slot meanwhile; the stream then opens', async () => {
    const bearer = await token({ alg: 'ES256', kid: 'k1', key: signKey });
    const ctl = new AbortController();
    const stream = fetch(`http://127.0.0.1:${port}/v1/stream/sse`, { headers: { authorization: `Bearer ${bearer}` }, signal: ctl.signal });
    await waitFor(() => held.length === 1, 'the stream token check waiting for the JWKS');
    const statuses: number[] = [];
    const opened: WebSocket[] = [];
    // fresh TCP connections: the kernel hands each to either worker
    for (let i = 0; i < 60; i++) {
      const { status, ws } = await upgrade();
      statuses.push(status);
      if (status === 101) opened.push(ws);
    }
    for (const ws of opened) ws.close();
    expect(statuses.filter((s) => s !== 503)).toEqual([]);
    for (const answer of held.splice(0)) answer();
    const res = await stream;
    expect(res.status).toBe(200);
    ctl.abort();
    await res.body?.cancel().catch(() => undefined);
  }, 30_000);
});
