import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/bus/nats-bus.js';
import { busContract } from '../helpers/bus-contract.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

let nats: TestServer & { destroy(): Promise<void> };
beforeAll(async () => {
  nats = await startNats({ jetstream: false });
});
afterAll(async () => {
  await nats?.destroy();
});

busContract('nats (real nats-server)', {
  create: (onHandlerError) => NatsBus.connect({ servers: nats.url, onHandlerError }),
});

describe('NatsBus connection errors', () => {
  it('names NATS_URL when the server cannot be reached', async () => {
    await expect(NatsBus.connect({ servers: 'nats://127.0.0.1:1' })).rejects.toThrow(/cannot connect to NATS.*NATS_URL/);
  });
});
