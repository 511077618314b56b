import { afterAll, beforeAll } from 'vitest';
import { startGatewayWorkers } from '../../src/workers/supervisor.js';
import type { GatewayWorkers } from '../../src/workers/supervisor.js';
import { gatewayWorkerEntry } from './processes.js';

/**
 * An embedded engine whose gateway runs on 2 worker threads, for the enclosing describe block
 * (started before its tests, closed after them): loopback, a free port, no log, plus `overrides`.
 */
export function embeddedWorkers(overrides: Record<string, unknown>): { readonly port: number } {
  let gw: GatewayWorkers | undefined;
  beforeAll(async () => {
    gw = await startGatewayWorkers({
      overrides: { host: '127.0.0.1', port: 0, log: { level: 'silent' }, gateway: { workers: 2 }, ...overrides },
      ...gatewayWorkerEntry(),
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.close();
  }, 30_000);
  return {
    get port(): number {
      if (!gw) throw new Error('embeddedWorkers: the gateway starts in beforeAll');
      return gw.port;
    },
  };
}
