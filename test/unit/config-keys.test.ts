import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import YAML from 'yaml';
import { configLeaves, ENV_ALIASES, loadConfig } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { tickwireCli } from '../helpers/processes.js';

/**
 * Every key of the config schema, walked from the schema itself (a key added tomorrow is in this
 * table without anyone editing it), given wrong values through a config file and through each of
 * its environment variables: each must be refused with a ConfigError whose message names what
 * the operator wrote (the env variable; the file and the key's path) and says what to write,
 * never zod's generic texts, never a secret.
 */
const dir = mkdtempSync(join(tmpdir(), 'tw-config-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Leaf = ReturnType<typeof configLeaves>[number];
/** a value as the environment gives it, and as a file gives it */
interface Bad {
  env?: string;
  file?: unknown;
  why: string;
}

function bare(s: z.ZodType): any {
  let cur: any = s;
  while (cur?.def && ['default', 'optional', 'nullable', 'prefault'].includes(cur.def.type)) cur = cur.def.innerType;
  return cur;
}
const finite = (v: number | null | undefined, safe: number): v is number => typeof v === 'number' && Number.isFinite(v) && Math.abs(v) < safe;
const rejects = (schema: any, v: unknown): boolean => !schema.safeParse(v).success;

/** Text values the schema of a string refuses (empty, spaces and punctuation, not a URL). */
const STRING_CANDIDATES = ['', 'not valid!', 'nope'];

/** Wrong values for one value schema (a leaf, or the element of a list). */
function badValues(schema: any): Bad[] {
  const s = bare(schema);
  switch (s.def.type) {
    case 'number': {
      const out: Bad[] = [{ env: '10ms', file: '10ms', why: 'a number with a unit' }];
      if (finite(s.minValue, Number.MAX_SAFE_INTEGER)) out.push({ env: String(s.minValue - 1), file: s.minValue - 1, why: 'below the minimum' });
      if (finite(s.maxValue, Number.MAX_SAFE_INTEGER)) out.push({ env: String(s.maxValue + 1), file: s.maxValue + 1, why: 'above the maximum' });
      if (s.isInt) {
        const half = (finite(s.minValue, Number.MAX_SAFE_INTEGER) ? s.minValue : 0) + 0.5;
        if (!finite(s.maxValue, Number.MAX_SAFE_INTEGER) || half < s.maxValue) out.push({ env: String(half), file: half, why: 'not a whole number' });
      }
      return out;
    }
    case 'boolean':
      return [{ env: 'maybe', file: 'yes', why: 'not a boolean' }];
    case 'enum':
      return [{ env: 'nope', file: 'nope', why: 'not a choice' }];
    case 'string': {
      const out: Bad[] = [{ file: 5, why: 'not text' }];
      const refused = STRING_CANDIDATES.find((c) => rejects(s, c));
      if (refused !== undefined) out.push({ env: refused, file: refused, why: `a value the key refuses (${JSON.stringify(refused)})` });
      return out;
    }
    case 'array': {
      const element = bare(s.def.element);
      const out: Bad[] = [{ file: 'a', why: 'not a list' }];
      if (element.def.type === 'object') {
        out.push({ env: '[{"name":"x"}]', file: [{ name: 'x' }], why: 'an entry missing its fields' });
        out.push({ env: '[1', why: 'broken JSON' });
        return out;
      }
      for (const b of badValues(element)) {
        if (b.env !== undefined && b.env !== '') out.push({ env: `${b.env}`, file: [b.file], why: `an entry ${b.why}` });
        else if (b.file !== undefined) out.push({ file: [b.file], why: `an entry ${b.why}` });
      }
      // an empty entry in a comma list
      if (rejects(element, '')) out.push({ env: 'a,,b', why: 'an empty entry' });
      return out;
    }
    default:
      throw new Error(`no wrong values known for a ${s.def.type}: extend badValues()`);
  }
}

/** Keys where any text is a valid value (the environment cannot give them a wrong one). */
const ANY_TEXT = new Set(['instrumentsFile', 'gateway.webDir']);

const envNames = (leaf: Leaf): string[] => [
  leaf.env,
  ...Object.entries(ENV_ALIASES)
    .filter(([, k]) => k === leaf.key)
    .map(([e]) => e),
];

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  return '(accepted)';
}

/** The message says what to write: not zod's generic texts, no stack. */
function expectClear(msg: string, context: string): void {
  expect(msg, context).not.toBe('(accepted)');
  expect(msg, context).not.toMatch(/Invalid input|Too small|Too big|Invalid option|Invalid string|expected int\b|received \w+|^\s+at /m);
  expect(msg, context).toMatch(/\b(set|use|write|give|remove|quote|put|add|change|raise|lower|must|at least|at most|one of)\b/);
}

const leaves = configLeaves();

describe('every config key refuses a wrong value with a message naming it', () => {
  it('walks the whole schema', () => {
    expect(leaves.length).toBeGreaterThan(100);
    // the exceptions above are keys of the schema, and really take any text
    for (const k of ANY_TEXT) {
      const leaf = leaves.find((l) => l.key === k);
      expect(leaf, k).toBeDefined();
      expect(
        STRING_CANDIDATES.some((c) => rejects(bare(leaf!.schema), c)),
        k,
      ).toBe(false);
    }
  });

  for (const leaf of leaves) {
    const bad = badValues(leaf.schema);
    it(`${leaf.key}: from the config file`, () => {
      const file = join(dir, `${leaf.key}.yaml`);
      for (const b of bad.filter((x) => x.file !== undefined)) {
        const doc: Record<string, unknown> = {};
        let o = doc;
        const path = leaf.key.split('.');
        for (const k of path.slice(0, -1)) o = (o[k] = {}) as Record<string, unknown>;
        o[path.at(-1)!] = b.file;
        writeFileSync(file, YAML.stringify(doc));
        const msg = refusal(() => loadConfig({ env: { TICKWIRE_CONFIG: file } }));
        const context = `${leaf.key} in a file, ${b.why}: ${msg}`;
        expectClear(msg, context);
        expect(msg, context).toContain(leaf.key);
        expect(msg, context).toContain(file);
      }
    });
    it(`${leaf.key}: from the environment (${envNames(leaf).join(', ')})`, () => {
      const envBad = bad.filter((x) => x.env !== undefined);
      if (!ANY_TEXT.has(leaf.key)) expect(envBad.length, `no wrong env value for ${leaf.key}`).toBeGreaterThan(0);
      for (const name of envNames(leaf)) {
        for (const b of envBad) {
          const msg = refusal(() => loadConfig({ env: { [name]: b.env! } }));
          const context = `${name}=${b.env}, ${b.why}: ${msg}`;
          expectClear(msg, context);
          // the variable the operator set, not another name of the key
          expect(msg, context).toMatch(new RegExp(`\\b${name}\\b`));
          if (/secret|token|password/i.test(leaf.key) && b.env!.length > 3) expect(msg, context).not.toContain(b.env);
        }
      }
    });
  }

  it('suggests the key a misspelt file key was meant to be', () => {
    const file = join(dir, 'typo.yaml');
    writeFileSync(file, 'gateway:\n  maxFrameByte: 1000\nshutdownTimeoutMS: 5000\n');
    const msg = refusal(() => loadConfig({ env: { TICKWIRE_CONFIG: file } }));
    expect(msg).toMatch(new RegExp(`unknown key "gateway.maxFrameByte" in ${file}: remove it or correct it to "gateway.maxFrameBytes"`));
    expect(msg).toMatch(/unknown key "shutdownTimeoutMS" .*"shutdownTimeoutMs"/);
  });

  it("leaves alone the project's own variables that are not configuration (the build's and the test suite's)", () => {
    // README: TICKWIRE_TEST_FROM_SOURCE=1 forces tests onto the sources; .ci/run sets
    // TICKWIRE_SKIP_PREPARE for npm ci. An engine started with either set refused to start.
    for (const name of ['TICKWIRE_TEST_FROM_SOURCE', 'TICKWIRE_SKIP_PREPARE', 'TICKWIRE_CONFIG', 'TICKWIRE_FEEDS_FILE', 'TICKWIRE_TOKEN']) {
      expect(() => loadConfig({ env: { [name]: name === 'TICKWIRE_CONFIG' || name === 'TICKWIRE_FEEDS_FILE' ? '' : '1' } }), name).not.toThrow();
    }
  });

  it('suggests the variable or flag a misspelt one was meant to be', () => {
    expect(refusal(() => loadConfig({ env: { TICKWIRE_SHUTDOWN_TIMEOUT: '5000' } }))).toMatch(
      /unknown environment variable TICKWIRE_SHUTDOWN_TIMEOUT: remove it or correct it to TICKWIRE_SHUTDOWN_TIMEOUT_MS/,
    );
    expect(refusal(() => loadConfig({ env: { TICKWIRE_SLOW_STUCKMS: '500' } }))).toMatch(/correct it to TICKWIRE_SLOW_STUCK_MS/);
    expect(refusal(() => loadConfig({ env: {}, argv: ['--gateway.maxFrames=1'] }))).toMatch(
      /unknown flag --gateway\.maxFrames: did you mean --gateway\.maxFrameBytes\?/,
    );
  });

  it('names the source that set the value when several did (flag over env over file)', () => {
    const file = join(dir, 'sources.yaml');
    writeFileSync(file, 'slow:\n  stuckMs: 5\n');
    expect(refusal(() => loadConfig({ env: { TICKWIRE_CONFIG: file } }))).toMatch(`slow.stuckMs (in ${file}; env TICKWIRE_SLOW_STUCK_MS)`);
    expect(refusal(() => loadConfig({ env: { TICKWIRE_CONFIG: file, TICKWIRE_SLOW_STUCK_MS: '7' } }))).toMatch(
      /slow\.stuckMs \(env TICKWIRE_SLOW_STUCK_MS\): 7 is below/,
    );
    expect(refusal(() => loadConfig({ env: { TICKWIRE_CONFIG: file }, argv: ['--slow.stuckMs=3'] }))).toMatch(
      /slow\.stuckMs \(flag --slow\.stuckMs\): 3 is below/,
    );
    expect(refusal(() => loadConfig({ env: { PORT: '70000' } }))).toMatch(/port \(env PORT\): 70000 is above the maximum: set a whole number from 0 to 65535/);
  });

  it('checks between keys name them as they were set', () => {
    const file = join(dir, 'between.yaml');
    writeFileSync(file, 'slow:\n  lowWaterBytes: 2000000\n');
    expect(refusal(() => loadConfig({ env: { TICKWIRE_CONFIG: file } }))).toBe(
      `slow.lowWaterBytes (2000000) must be below slow.highWaterBytes (1048576): lower slow.lowWaterBytes in ${file} or raise TICKWIRE_SLOW_HIGH_WATER_BYTES`,
    );
    expect(refusal(() => loadConfig({ env: {}, argv: ['--book.maxLevels=50'] }))).toMatch(/raise --book\.maxLevels or lower TICKWIRE_BOOK_DEPTHS/);
  });

  it('refuses values that made no sense but were taken: a 0 ms shutdown deadline, a hex port, one Redis prefix for two stores', () => {
    expect(refusal(() => loadConfig({ env: { TICKWIRE_SHUTDOWN_TIMEOUT_MS: '0' } }))).toMatch(/shutdownTimeoutMs \(env TICKWIRE_SHUTDOWN_TIMEOUT_MS\)/);
    expect(refusal(() => loadConfig({ env: { TICKWIRE_PORT: '0x50' } }))).toMatch(/TICKWIRE_PORT="0x50" is not a number/);
    expect(refusal(() => loadConfig({ env: { TICKWIRE_REDIS_KEY_PREFIX: '' } }))).toMatch(/redis\.keyPrefix \(env TICKWIRE_REDIS_KEY_PREFIX\): is empty/);
    expect(refusal(() => loadConfig({ env: { TICKWIRE_HISTORY_REDIS_KEY_PREFIX: 'tickwire:lv:' } }))).toMatch(
      /redis\.keyPrefix and history\.redisKeyPrefix are both "tickwire:lv:".*TICKWIRE_REDIS_KEY_PREFIX, TICKWIRE_HISTORY_REDIS_KEY_PREFIX/,
    );
  });

  it('never echoes credentials of a malformed NATS URL', () => {
    const msg = refusal(() => loadConfig({ env: { NATS_URL: 'nats://svc:hunter2-pass@nats.internal:4222/x' } }));
    expect(msg).toMatch(/natsUrl \(env NATS_URL\): "nats:\/\/\[redacted\]@nats\.internal:4222\/x" is not a NATS server URL/);
    expect(msg).not.toContain('hunter2');
  });

  it('the CLI exits 2 with every problem of a file on stderr, each naming its key, and no stack trace', () => {
    const doc: Record<string, any> = {};
    const named: string[] = [];
    for (const leaf of leaves) {
      const b = badValues(leaf.schema).find((x) => x.file !== undefined)!;
      const path = leaf.key.split('.');
      let o = doc;
      for (const k of path.slice(0, -1)) o = o[k] ??= {};
      o[path.at(-1)!] = b.file;
      named.push(leaf.key);
    }
    const file = join(dir, 'all-wrong.yaml');
    writeFileSync(file, YAML.stringify(doc));
    const env = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('TICKWIRE_') && !['PORT', 'HOST', 'NATS_URL', 'REDIS_URL', 'LOG_LEVEL'].includes(k)),
    );
    const r = spawnSync(process.execPath, [...tickwireCli(), 'start', '--config', file], { env, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toMatch(/^\s+at /m);
    for (const key of named) expect(r.stderr, key).toMatch(new RegExp(`^  ${key.replace(/\./g, '\\.')}[.\\d]* \\(in ${file}`, 'm'));
  });
});
