import { Agent, request } from 'node:http';

/** A GET's status and body. */
export interface Got {
  status: number;
  body: string;
}

/**
 * GET `path` on 127.0.0.1:`port` over `agent`: with a keep-alive agent of one socket, the same
 * connection, so the same gateway worker, every time.
 */
export function keepAliveGet(port: number, agent: Agent, path: string, bearer?: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent, headers: bearer ? { authorization: `Bearer ${bearer}` } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * Keep-alive agents until one is held by each of two gateway workers (the kernel spreads
 * connections by a hash of their addresses; `/health`, which no limit counts, says which worker
 * answered). Every agent made is pushed to `agents` (to destroy after the test); the extra ones
 * are destroyed at once. Returns [worker 0's, worker 1's], or throws when 40 tries found no pair.
 */
export async function agentsOnBothWorkers(port: number, agents: Agent[]): Promise<[Agent, Agent]> {
  const byWorker = new Map<number, Agent>();
  for (let i = 0; i < 40 && byWorker.size < 2; i++) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    const worker = (JSON.parse((await keepAliveGet(port, agent, '/health')).body) as { workers: { this: number } }).workers.this;
    if (!byWorker.has(worker)) byWorker.set(worker, agent);
    else agent.destroy();
  }
  const w0 = byWorker.get(0);
  const w1 = byWorker.get(1);
  if (!w0 || !w1) throw new Error(`no keep-alive connection on each of the two workers in 40 tries (workers seen: ${[...byWorker.keys()].join(', ')})`);
  return [w0, w1];
}
