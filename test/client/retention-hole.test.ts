import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
// the SDK of this checkout, by path (`@tickwire/client` may resolve to another checkout's package)
import { TickwireClient, type Execution, type GapEvent, type Update } from '../../packages/client/src/index.js';
import type { Engine } from '../../src/app/engine.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { startTestEngine, streamUrl } from './helpers.js';

/**
 * A `since` older than the retention gets the oldest retained events, and "the first `seq`
 * shows the hole" (docs/protocol.md#executions): events the log no longer holds cannot be
 * replayed. The client reports that hole once (a `gap` event) and carries on from the oldest
 * retained event; asking the server again would only bring the same hole back.
 */
const SECRET = 'test-secret-for-retention-0123456789abcdef';
const SERVICE_TOKEN = 'service-token-for-tests-0123456789';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function postExecution(port: number, n: number): Promise<void> {
  const body = { user: 'alice', id: `r-${n}`, order: `o-${n}`, sym: 'AAPL', side: 'buy', qty: n, p: 100 + n, t: Date.now() };
  const res = await fetch(`http://127.0.0.1:${port}/v1/executions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST /v1/executions: ${res.status} ${await res.text()}`);
}

describe('client SDK: a resume point older than the retention', { timeout: 60_000 }, () => {
  it('reports the hole once and delivers the retained events, without asking again and again', async () => {
    const engine: Engine = await startTestEngine(undefined, {
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      executions: { maxPerUser: 3 },
    });
    cleanups.push(() => engine.close());
    for (let n = 1; n <= 7; n++) await postExecution(engine.port, n);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const client = new TickwireClient({ url: streamUrl(engine.port), token, encoding: 'json', reconnect: false });
    cleanups.push(() => client.close());
    const got: Update<Execution>[] = [];
    const gaps: GapEvent[] = [];
    client.on('execution', (u) => got.push(u));
    client.on('gap', (g) => gaps.push(g));
    await client.connect();
    // the client last saw seq 1; the log keeps the newest 3 (seq 5 to 7)
    await client.subscribe(['executions'], { since: 1 });
    await waitFor(() => got.length >= 3 || gaps.length > 5, { what: 'the retained executions', timeout: 10_000 });
    expect(gaps.length, 'the client asked again and again for events the log no longer holds').toBe(1);
    // no more subscribes of the same hole (each would bring a gap event and the same replay)
    await quietFor(500, 'nothing more arrives: no second gap, no repeated replay');
    expect(got.map((u) => u.seq)).toEqual([5, 6, 7]);
    expect(gaps).toEqual([{ channel: 'executions', expected: 2, received: 5, missed: 3 }]);
    // and live events follow on
    await postExecution(engine.port, 8);
    await waitFor(() => got.length >= 4, { what: 'a live execution', timeout: 10_000 });
    expect(got.map((u) => u.seq)).toEqual([5, 6, 7, 8]);
  });
});
