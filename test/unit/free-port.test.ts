import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freePort, reservePort } from '../helpers/servers.js';

/**
 * The suite's free-port helper never hands out a port it handed out before while that port's
 * process lives, even once the port is free again: a cluster node killed and started again on
 * its ports leaves them free meanwhile (test/faults/inbound-cluster.test.ts, n2's monitor port
 * taken by another test process).
 */
describe('freePort', () => {
  afterEach(() => vi.restoreAllMocks());

  it('does not hand out a port again while it is free but still reserved', async () => {
    // the same random draw twice, then another: the second call may not return the first port
    const draws = [0.123456, 0.123456, 0.654321];
    vi.spyOn(Math, 'random').mockImplementation(() => draws.shift() ?? Math.random());
    const a = await freePort();
    const b = await freePort();
    expect(b).not.toBe(a);
    expect(reservePort(a)).toBe(false);
  });

  it('takes over the reservation of a process that is gone, not that of a live one', () => {
    const port = 15000 + Math.floor(Math.random() * 15000);
    // reserved by another process, which is killed (as a test worker can be)
    const script = `import('./test/helpers/servers.ts').then((m) => { process.stdout.write(String(m.reservePort(${port}))); process.kill(process.pid, 'SIGKILL'); })`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8' });
    expect(child.stdout).toBe('true');
    expect(child.signal).toBe('SIGKILL');
    expect(reservePort(port)).toBe(true);
    expect(reservePort(port)).toBe(false); // now this process's
  });
});
