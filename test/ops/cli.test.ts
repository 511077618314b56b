import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { runToExit, tickwireCli } from '../helpers/processes.js';
import { errorOf } from '../helpers/config-error.js';
import { workersFlag } from '../../src/workers/cli.js';
import { freePort } from '../helpers/servers.js';

/** The environment of the test run without tickwire's own variables. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TICKWIRE_') && !['PORT', 'HOST', 'NATS_URL', 'REDIS_URL', 'LOG_LEVEL'].includes(k)),
  );
  return { ...clean, ...env };
}

/**
 * Run `node <argv>` to its exit (killed after 60 s), its output apart. Not spawnSync: the tests of
 * this file run at the same time (each describe is concurrent), each waiting on processes of its own.
 */
function run(argv: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToExit(argv, cleanEnv(env));
}

/** Run the real CLI (compiled, or from source when dist/ is stale: tickwireCli). */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return run([...tickwireCli(), ...args], env);
}

/** Run the real CLI until it exits on its own (or fail after `ms`). */
function cliUntilExit(args: string[], env: Record<string, string>, ms = 60_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...tickwireCli(), ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tickwire ${args.join(' ')} still running after ${ms} ms:\n${out}`));
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** A stack trace, plain (`    at f (file:1:2)`) or inside a JSON log line (`"stack":`). */
const STACK = /^\s+at .+[:(]|"stack":/m;

describe('tickwire CLI: help', { concurrent: true }, () => {
  it.each(['start', 'gateway', 'feed', 'portfolio', 'alerts', 'config', 'check-uws', 'tap', 'token', 'record'])(
    '`tickwire %s --help` prints its usage and exits 0',
    async (command) => {
      const r = await cli([command, '--help']);
      expect(r.stderr).toBe('');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`tickwire ${command}`);
      expect(r.stdout).not.toMatch(/unknown flag/);
    },
  );

  it('the roles without a gateway tell how to reach their /health, /ready and /metrics (ops.port)', async () => {
    // they serve them only on ops.port, off by default; the help named --port, which they do not use
    for (const command of ['feed', 'portfolio', 'alerts']) {
      const r = await cli([command, '--help']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, command).toMatch(/--ops\.port N\s+\/health, \/ready and \/metrics on port N \(TICKWIRE_OPS_PORT; default 0: off\)/);
    }
  });

  it('`-h` works like --help for the roles', async () => {
    const r = await cli(['gateway', '-h']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('tickwire gateway');
    expect(r.stdout).toContain('NATS_URL');
  });
});

describe('tickwire CLI: a flag without its value', { concurrent: true }, () => {
  it('--workers at the end names the flag and what it takes', async () => {
    const r = await cli(['start', '--workers']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--workers needs a number/);
    expect(r.stderr).not.toMatch(/unknown flag/);
  });

  it('--workers with a value that is not a number of workers names --workers, as typed', () => {
    // it named --gateway.workers, the flag it is rewritten to, which the operator never typed
    for (const args of [['--workers', 'abc'], ['--workers=-1'], ['--workers', '300'], ['--workers=2.5']])
      expect(
        errorOf(() => workersFlag(args)),
        args.join(' '),
      ).toMatch(/^--workers takes a whole number from 0 to 256, got "[^"]+": e\.g\. --workers 2 /);
    expect(workersFlag(['--workers', '4', '--port=1'])).toEqual(['--gateway.workers=4', '--port=1']);
    expect(workersFlag(['--workers=0'])).toEqual(['--gateway.workers=0']);
  });

  it('a configuration flag that takes a value, given none, names the flag (not its value "true")', async () => {
    const flags = ['--host', '--port', '--log.level'];
    const runs = await Promise.all(flags.map((flag) => cli(['config', flag])));
    for (const [i, flag] of flags.entries()) {
      const r = runs[i]!;
      expect(r.code, `${flag}: ${r.stdout}`).toBe(2);
      expect(r.stderr).toContain(`${flag} needs a value`);
    }
    // a boolean flag alone still means true
    const b = await cli(['config', '--gateway.allowUwsFallback']);
    expect(b.code, b.stderr).toBe(0);
    expect(JSON.parse(b.stdout).gateway.allowUwsFallback).toBe(true);
  });

  it('a stray argument is refused, not ignored (`tickwire start binance` used to run the synthetic feed)', async () => {
    const commands = ['start', 'gateway', 'portfolio', 'alerts', 'config'];
    const runs = await Promise.all(commands.map((command) => cli([command, 'binance', '--port=0'])));
    for (const [i, command] of commands.entries()) {
      const r = runs[i]!;
      expect(r.code, `${command}: ${r.stdout}`).toBe(2);
      expect(r.stderr).toContain(`tickwire ${command} takes no argument "binance"`);
    }
  });

  it('--config without a path says so instead of reading a file named "true"', async () => {
    const r = await cli(['config', '--config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--config needs a path/);
    expect(r.stderr).not.toMatch(/true/);
  });
});

describe('tickwire record: an output file it cannot write', { concurrent: true }, () => {
  it('is refused before anything is recorded, naming --out and the reason (was: "recorded 0 ticks", exit 0)', async () => {
    const port = await freePort(); // checked before the bus: no NATS needed
    const r = await cli(['record', '--out', '/nonexistent-dir/ticks.jsonl', '--duration', '1'], { NATS_URL: `nats://127.0.0.1:${port}` });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/record --out \/nonexistent-dir\/ticks\.jsonl: cannot write the file: ENOENT/);
    expect(r.stderr).not.toMatch(STACK);
  });
});

describe('tickwire CLI: unreachable servers at start', { concurrent: true }, () => {
  it('Redis not reachable: one line naming REDIS_URL and the fix, exit 1, no stack trace', { timeout: 90_000 }, async () => {
    const port = await freePort(); // nothing listens there
    const r = await cliUntilExit(['start', '--workers', '1'], { HOST: '127.0.0.1', PORT: '0', REDIS_URL: `redis://127.0.0.1:${port}`, LOG_LEVEL: 'warn' });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(new RegExp(`tickwire: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\)`));
    expect(r.out).toMatch(/start redis-server|fix REDIS_URL/);
    expect(r.out).not.toMatch(STACK);
  });

  it('Redis that accepts connections but never answers (hung): the same line, not "unexpected failure: Command timed out"', { timeout: 90_000 }, async () => {
    const silent = createServer(() => undefined); // takes the connection, says nothing
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as AddressInfo).port;
    try {
      // redis.commandTimeoutMs 1000, not the default 5000: the start gives up after two of them
      // (about 11 s with the default); the line names the value in force
      const r = await cliUntilExit(['start', '--workers', '1'], {
        HOST: '127.0.0.1',
        PORT: '0',
        REDIS_URL: `redis://127.0.0.1:${port}`,
        LOG_LEVEL: 'warn',
        TICKWIRE_REDIS_COMMAND_TIMEOUT_MS: '1000',
      });
      expect(r.code, r.out).toBe(1);
      expect(r.out).toMatch(
        new RegExp(
          `tickwire: cannot reach Redis at redis://127\\.0\\.0\\.1:${port} \\(REDIS_URL\\): it did not answer within redis\\.commandTimeoutMs \\(1000 ms\\)`,
        ),
      );
      expect(r.out).toMatch(/fix REDIS_URL/);
      expect(r.out).not.toMatch(/unexpected failure/);
      expect(r.out).not.toMatch(STACK);
    } finally {
      silent.close();
    }
  });

  it('NATS not reachable with several gateway workers: the reason once, exit 1, no stack trace', { timeout: 90_000 }, async () => {
    const port = await freePort();
    const r = await cliUntilExit(['gateway', '--workers', '2'], { HOST: '127.0.0.1', PORT: '0', NATS_URL: `nats://127.0.0.1:${port}` });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain(`cannot connect to NATS at nats://127.0.0.1:${port} (NATS_URL)`);
    expect(r.out).not.toMatch(STACK);
  });
});

describe('npm run cluster (scripts/cluster.mjs): arguments are checked before anything starts', { concurrent: true }, () => {
  const cluster = (args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> => run(['scripts/cluster.mjs', ...args], {});

  it('--help prints the usage and exits 0 (it used to start the whole cluster)', async () => {
    const r = await cluster(['--help']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/usage: npm run cluster/);
    expect(r.stdout).not.toMatch(/cluster ready/);
  });

  it.each([
    [['--port', 'abc'], /--port: "abc" is not a port/],
    [['--workers', '-1'], /--workers: "-1" is not a number of workers/],
    [['--bogus'], /unknown option --bogus/],
  ])('%j is refused with exit 2, naming it', async (args, message) => {
    const r = await cluster(args);
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).not.toMatch(/cluster ready/);
  });

  it('a gateway port in use is refused before NATS and Redis are started', async () => {
    const { createServer } = await import('node:net');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['scripts/cluster.mjs', '--port', String(port)], { env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        const t = setTimeout(() => child.kill('SIGTERM'), 30_000);
        child.on('exit', (code) => {
          clearTimeout(t);
          resolve({ code, out });
        });
      });
      expect(r.code, r.out).toBe(2);
      expect(r.out).toContain(`port ${port} is in use: pass --port N (0 picks a free one)`);
      expect(r.out).not.toMatch(/stopped \d+ processes \(nats/); // nothing was started
    } finally {
      srv.close();
    }
  });
});
