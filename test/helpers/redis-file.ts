import { afterAll, beforeAll } from 'vitest';
import { startRedis } from './servers.js';
import type { TestServer } from './servers.js';

/**
 * One redis-server for the test file (as natsClient() is for NATS), and a cleanup list run after
 * the file's tests, last added first, before the server stops. Call it at the top level of the file.
 */
export function redisForFile(): { readonly server: TestServer; readonly cleanup: (() => unknown)[] } {
  let server: Awaited<ReturnType<typeof startRedis>> | undefined;
  const cleanup: (() => unknown)[] = [];
  beforeAll(async () => {
    server = await startRedis();
  }, 30_000);
  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
    await server?.destroy();
  });
  return {
    get server(): TestServer {
      if (!server) throw new Error('redisForFile: the server is started in beforeAll');
      return server;
    },
    cleanup,
  };
}
