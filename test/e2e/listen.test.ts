import { describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';

describe('gateway listen', () => {
  it('refuses to start on a port another gateway already uses, naming PORT', async () => {
    const a = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [] });
    try {
      await expect(startEngine({ host: '127.0.0.1', port: a.port, log: { level: 'silent' }, feeds: [] })).rejects.toThrow(/cannot listen.*in use.*PORT/);
    } finally {
      await a.close();
    }
  });
});
