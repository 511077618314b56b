import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * docs/adding-a-provider.md builds a made-up provider's adapter ("Acme") in TypeScript blocks:
 * options, the adapter, its fake server and its tests. Every snippet in the docs must run as
 * written, so this takes those blocks out of the guide as they are, puts them where the guide
 * says (feeds/<dir>/acme-feed.ts, fake-server.ts, test/acme.test.ts), records the fixtures from
 * the guide's protocol sketch, and then typechecks them with the project's settings and runs the
 * guide's test file (conformance kit included) in its own vitest.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const GUIDE = readFileSync(join(ROOT, 'docs/adding-a-provider.md'), 'utf8');
const DIR = `acme-guide-${process.pid}`;
const FEED_DIR = join(ROOT, 'feeds', DIR);
const TSCONFIG = join(ROOT, `tsconfig.${DIR}.json`);

const blocks = [...GUIDE.matchAll(/```(\w*)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, text: m[2]! }));
const ts = (marker: string): string => {
  const found = blocks.filter((b) => b.lang === 'ts' && b.text.includes(marker));
  expect(found, `one ts block of the guide holds ${marker}`).toHaveLength(1);
  return found[0]!.text;
};

/** Node with these arguments in the repository's root, to its end (killed after 180 s): its exit code and output. */
function node(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      args,
      { cwd: ROOT, encoding: 'utf8', timeout: 180_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } },
      (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}

afterAll(() => {
  rmSync(FEED_DIR, { recursive: true, force: true });
  rmSync(TSCONFIG, { force: true });
});

describe('docs/adding-a-provider.md, as written', () => {
  it('the Acme adapter, fake server and tests typecheck and pass', { timeout: 240_000 }, async () => {
    // the protocol sketch's server data messages are the fixtures (the fake adds `seq`)
    const sketch = blocks.find((b) => b.lang === '' && b.text.includes('server ->'))!.text;
    const fixtures: Record<string, unknown>[] = [];
    for (const line of sketch.split('\n')) {
      const m = /server -> (\{.*?\})(?:\s+\(|\s*$)/.exec(line);
      if (!m) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(m[1]!) as Record<string, unknown>;
      } catch {
        continue; // an elided message such as {"symbols":[...]}
      }
      if (msg.type !== 'trade' && msg.type !== 'bbo') continue;
      delete msg.seq;
      fixtures.push(msg);
    }
    expect(fixtures.map((f) => f.type)).toEqual(['trade', 'bbo']);

    mkdirSync(join(FEED_DIR, 'test'), { recursive: true });
    mkdirSync(join(FEED_DIR, 'fixtures'), { recursive: true });
    writeFileSync(join(FEED_DIR, 'fixtures/messages.json'), JSON.stringify(fixtures));
    writeFileSync(join(FEED_DIR, 'acme-feed.ts'), `${ts('AcmeOptionsSchema = z')}\n${ts('export class AcmeFeed')}`);
    writeFileSync(join(FEED_DIR, 'fake-server.ts'), ts('export async function startAcmeFake'));
    writeFileSync(join(FEED_DIR, 'test/acme.test.ts'), ts('runAdapterConformance({'));

    writeFileSync(TSCONFIG, JSON.stringify({ extends: './tsconfig.json', compilerOptions: { noEmit: true }, include: [`feeds/${DIR}/**/*.ts`] }));
    // the typecheck and the test run read the same files and write nothing the other reads: both at once
    const [tsc, run] = await Promise.all([
      node([join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', TSCONFIG], {}),
      node([join(ROOT, 'node_modules/vitest/vitest.mjs'), 'run', `feeds/${DIR}`, '--reporter=default'], { NO_COLOR: '1', FORCE_COLOR: '0' }),
    ]);
    expect(tsc.stdout + tsc.stderr, 'tsc on the guide').toBe('');
    expect(tsc.status).toBe(0);

    const out = run.stdout + run.stderr;
    expect(run.status, out.slice(-3000)).toBe(0);
    // the conformance kit's six tests and the guide's two
    expect(out).toMatch(/Tests\s+8 passed \(8\)/);
  });
});
