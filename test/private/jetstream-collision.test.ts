import { createHash } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { natsClient, testLog } from '../helpers/nats-client.js';

/**
 * A clustered stream can store two writers' executions with the same per-user seq (nats-server
 * #4320); the later writer removes its copy and appends it again. When that removal fails (a
 * timeout while a node is down), the writer's caller retries the same execution, and JetStream's
 * message-id dedup answers "duplicate" pointing at the colliding copy. That copy must not be
 * accepted as stored: gateways drop an event whose seq they already passed on, so the execution
 * would never reach a client (no gap either). The retry repairs the collision instead.
 *
 * The state a failed removal leaves is written here directly on a single node: the winner with
 * seq 2, then the loser's copy with seq 2 and the message id the log gives that execution.
 */
const nats = natsClient();

const msgId = (user: string, id: string): string => createHash('sha256').update(user).update('\u0000').update(id).digest('base64url');
const exec = (id: string) => ({ id, order: `o-${id}`, sym: 'AAPL', side: 'buy' as const, qty: 1, p: 100, t: 1 });

describe('JetStream execution log: a collision left by a failed removal', () => {
  it('is repaired when the execution is appended again, not returned as a duplicate', async () => {
    const log = await testLog(nats.nc, 'COLL');
    const js = jetstream(nats.nc);
    expect(await log.append('u1', exec('a'))).toEqual({ seq: 1, duplicate: false });
    // the winner, then the loser's copy with the same seq, whose removal failed
    await js.publish('exec.log.u1', JSON.stringify({ seq: 2, d: exec('b') }), { msgID: msgId('u1', 'b') });
    await js.publish('exec.log.u1', JSON.stringify({ seq: 2, d: exec('c') }), { msgID: msgId('u1', 'c') });

    // the caller's retry of "c"
    const r = await log.append('u1', exec('c'));
    expect(r).toEqual({ seq: 3, duplicate: false });
    const stored = await log.read('u1', 0, 10);
    expect(stored.map((e) => [e.seq, e.d.id])).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'c'],
    ]);
    // and a later retry of "c" finds the repaired copy
    expect(await log.append('u1', exec('c'))).toEqual({ seq: 3, duplicate: true });
    expect(await log.append('u1', exec('d'))).toEqual({ seq: 4, duplicate: false });
    await log.close();
  });
});
