import { Agent, request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import { waitFor } from '../helpers/wait.js';

/** GET on a keep-alive agent: the status, or the connection error's code. */
function get(agent: Agent, port: number, path: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

describe('gateway listen', () => {
  it('refuses to start on a port another gateway already uses, naming PORT', async () => {
    const a = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [] });
    try {
      await expect(startEngine({ host: '127.0.0.1', port: a.port, log: { level: 'silent' }, feeds: [] })).rejects.toThrow(/cannot listen.*in use.*PORT/);
    } finally {
      await a.close();
    }
  });

  it('closes idle HTTP keep-alive connections when it stops (no answers from a closed engine)', async () => {
    const engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], gateway: { workers: 1 } });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await get(agent, engine.port, '/health')).toBe(200);
      expect(Object.values(agent.freeSockets).flat()).toHaveLength(1);
      await engine.close();
      // the server ends the idle connection: the agent drops it instead of reusing it
      await waitFor(() => Object.values(agent.freeSockets).flat().length === 0, {
        timeout: 3000,
        what: 'the keep-alive connection closed by the stopped engine',
      });
      expect(await get(agent, engine.port, '/health')).toBe('ECONNREFUSED');
    } finally {
      agent.destroy();
    }
  });
});
