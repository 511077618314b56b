import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { distFresh } from '../helpers/processes.js';
import { freePort } from '../helpers/servers.js';
import { startTestEngine, streamUrl } from './helpers.js';

const RUNNER = join(import.meta.dirname, 'fixtures', 'run-tap.ts');
/** the same runner on the compiled tap (dist/ built from these sources): no tsx at each start */
const DIST_RUNNER = join(import.meta.dirname, 'fixtures', 'run-tap-dist.mjs');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function tap(
  args: string[],
  opts: { until?: (out: string) => boolean; onOutput?: (out: string) => void; onStderr?: (err: string) => void; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const runner = distFresh() ? [DIST_RUNNER] : ['--import', 'tsx', RUNNER];
    const child = spawn(process.execPath, [...runner, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tap ${args.join(' ')} did not finish; stdout: ${stdout.slice(-500)} stderr: ${stderr.slice(-500)}`));
    }, opts.timeoutMs ?? 40_000);
    let interrupted = false;
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      opts.onOutput?.(stdout);
      if (!interrupted && opts.until?.(stdout)) {
        interrupted = true; // once, like one Ctrl-C
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      opts.onStderr?.(stderr);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let engine: Engine;
beforeAll(async () => {
  engine = await startTestEngine();
});
afterAll(async () => {
  await engine?.close();
});

describe('tickwire tap', { timeout: 120_000 }, () => {
  it('prints JSON lines for each update and exits after --count', async () => {
    const r = await tap(['ticker:AAPL', 'trade:BTC-USD', '--json', '--count', '25', '--url', streamUrl(engine.port)]);
    expect(r.code).toBe(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { ch: string; seq: number; snapshot?: boolean; d: Record<string, number> });
    expect(lines).toHaveLength(25);
    expect(new Set(lines.map((l) => l.ch))).toEqual(new Set(['ticker:AAPL', 'trade:BTC-USD']));
    expect(
      lines
        .filter((l) => l.snapshot)
        .map((l) => l.ch)
        .sort(),
    ).toEqual(['ticker:AAPL', 'trade:BTC-USD']);
    for (const l of lines) {
      expect(typeof l.seq).toBe('number');
      expect(typeof l.d.p).toBe('number');
    }
  });

  it('prints a table (once a second when not on a terminal) and quits on Ctrl-C', async () => {
    const r = await tap(['quote:EUR-USD', 'bar.1s:NVDA', '--throttle', '250', '--encoding', 'json', '--url', streamUrl(engine.port)], {
      until: (out) => (out.match(/^CHANNEL/gm) ?? []).length >= 3 && /quote:EUR-USD\s+1\.\d+\s+1\.\d+/.test(out),
    });
    expect(r.code).toBe(0);
    const tables = r.stdout.split(/^tickwire tap /m).filter(Boolean);
    const last = tables[tables.length - 1]!;
    expect(last).toMatch(/open|closed/);
    expect(last).toMatch(/^CHANNEL\s+LAST\s+BID\s+ASK/m);
    expect(last).toMatch(/^quote:EUR-USD\s+1\.\d+\s+1\.\d+/m);
    expect(last).toMatch(/^bar\.1s:NVDA\s+\d+\.\d+.*o \d/m);
    expect(r.stdout).not.toContain('\x1b['); // no cursor control when not a terminal
  });

  it('reports rejected channels and exits 1 when nothing could be subscribed', async () => {
    const r = await tap(['ticker:NOPE', '--url', streamUrl(engine.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/rejected ticker:NOPE: UNKNOWN_CHANNEL/);
  });

  it('refuses bad usage with status 2', async () => {
    const r = await tap(['--throttle', 'x', 'ticker:AAPL']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/usage: tickwire tap/);
  });

  it('keeps running through an engine restart', async () => {
    const port = engine.port;
    let restarted = false;
    const phases: string[] = [];
    const t0 = Date.now();
    const mark = (p: string) => phases.push(`${p} +${Date.now() - t0}ms`);
    let firstSnapshot: () => void = () => undefined;
    const subscribed = new Promise<void>((resolve) => (firstSnapshot = resolve));
    let sawAttempt: () => void = () => undefined;
    const attempting = new Promise<void>((resolve) => (sawAttempt = resolve));
    const run = tap(['ticker:MSFT', '--json', '--url', streamUrl(port)], {
      onOutput: (out) => {
        if (out.includes('"snapshot":true')) firstSnapshot();
      },
      onStderr: (err) => {
        if (/reconnect attempt/.test(err)) sawAttempt();
      },
      // after the restart, a second snapshot shows the tap resubscribed
      until: (out) => restarted && (out.match(/"snapshot":true/g) ?? []).length >= 2,
      timeoutMs: 75_000,
    }).catch((err: Error) => {
      throw new Error(`${err.message}\nphases: ${phases.join(', ')}`);
    });
    // restart only once the tap is connected and subscribed to the first engine
    await Promise.race([subscribed, run]);
    mark('subscribed');
    mark('closing');
    await engine.close();
    mark('closed');
    await Promise.race([attempting, run]); // the tap noticed and retries while nothing listens
    mark('attempting');
    engine = await startTestEngine(port);
    mark('restarted');
    restarted = true;
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/reconnect attempt/);
  });

  it('gives up on a gateway it cannot reach after --retries attempts: exit 1, naming the URL', async () => {
    const url = `ws://127.0.0.1:${await freePort()}/v1/stream`; // nothing listens there
    const r = await tap(['ticker:AAPL', '--json', '--retries', '2', '--url', url], { timeoutMs: 30_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot connect to ${url}`);
    expect(r.stderr).toMatch(/gave up after 3 attempts/);
    // it never connected: no "connection lost"
    expect(r.stderr).not.toMatch(/connection lost/);
  });
});
