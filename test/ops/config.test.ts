import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import { describeConfig, loadConfig } from '../../src/core/config.js';
import { errorOf } from '../helpers/config-error.js';
import { tickwireCli } from '../helpers/processes.js';
import { REDACTED, redactConfig, redactUrl } from '../../src/ops/redact.js';

const dir = mkdtempSync(join(tmpdir(), 'tw-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Run the real CLI (compiled, or from source when dist/ is stale: tickwireCli). */
function cli(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('TICKWIRE_') && !['PORT', 'HOST', 'NATS_URL', 'REDIS_URL', 'LOG_LEVEL'].includes(k)),
  );
  const r = spawnSync(process.execPath, [...tickwireCli(), ...args], {
    cwd: process.cwd(),
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('config sources and precedence', () => {
  it('applies defaults < file < env < flags, and freezes the result', () => {
    const f = file('prec.yaml', 'port: 1111\nhost: 127.0.0.1\nsynthetic:\n  rate: 10\n  seed: 7\n');
    const cfg = loadConfig({ env: { TICKWIRE_CONFIG: f, PORT: '2222', TICKWIRE_SYNTHETIC_RATE: '20' }, argv: ['--synthetic.rate=30'] });
    expect(cfg.host).toBe('127.0.0.1'); // file
    expect(cfg.port).toBe(2222); // env over file
    expect(cfg.synthetic.rate).toBe(30); // flag over env
    expect(cfg.synthetic.seed).toBe(7); // file, sibling of an overridden key
    expect(cfg.gateway.maxFrameBytes).toBe(65536); // default
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(Object.isFrozen(cfg.synthetic)).toBe(true);
  });

  it('parses typed env values: numbers, booleans, lists', () => {
    const cfg = loadConfig({
      env: {
        TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK: 'yes',
        TICKWIRE_THROTTLE_TIERS: '0,100,1000',
        TICKWIRE_FEEDS: '["synthetic"]',
        TICKWIRE_REDIS_FLUSH_MS: '25',
      },
    });
    expect(cfg.gateway.allowUwsFallback).toBe(true);
    expect(cfg.throttle.tiers).toEqual([0, 100, 1000]);
    expect(cfg.feeds).toEqual(['synthetic']);
    expect(cfg.redis.flushMs).toBe(25);
  });
});

describe('config validation errors name the key and the fix', () => {
  it('bad type in the environment', () => {
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_PORT: 'eighty' } }))).toMatch(/TICKWIRE_PORT="eighty" is not a number/);
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK: 'maybe' } }))).toMatch(
      /TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK="maybe" is not a boolean/,
    );
  });

  it('out-of-range and wrong enum values', () => {
    // the variable the operator set (PORT), not the key's canonical name
    expect(errorOf(() => loadConfig({ env: { PORT: '70000' } }))).toMatch(/port \(env PORT\)/);
    expect(errorOf(() => loadConfig({ env: { LOG_LEVEL: 'loud' } }))).toMatch(/log\.level/);
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_SLOW_LOW_WATER_BYTES: String(8 * 1024 * 1024) } }))).toMatch(
      /slow\.lowWaterBytes \(8388608\) must be below slow\.highWaterBytes \(1048576\): lower TICKWIRE_SLOW_LOW_WATER_BYTES/,
    );
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_SLOW_LAG_MS: '90000' } }))).toMatch(
      /slow\.lagCloseMs \(60000\) must be above slow\.lagMs \(90000\): raise TICKWIRE_SLOW_LAG_CLOSE_MS or lower TICKWIRE_SLOW_LAG_MS/,
    );
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_SLOW_PING_MS: '1' } }))).toMatch(/slow\.pingMs \(env TICKWIRE_SLOW_PING_MS\)/);
    expect(loadConfig({ env: { TICKWIRE_SLOW_LAG_MS: '0' } }).slow.lagMs).toBe(0); // read lag off
  });

  it("a bad entry of a list names the entry and the list's environment variable", () => {
    const msg = errorOf(() => loadConfig({ env: { TICKWIRE_GATEWAY_ALLOWED_ORIGINS: 'https://ok.example,app.example.com' } }));
    expect(msg).toMatch(/gateway\.allowedOrigins\.1 \(env TICKWIRE_GATEWAY_ALLOWED_ORIGINS\): "app\.example\.com" is not an origin/);
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_THROTTLE_TIERS: '0,100,-5' } }))).toMatch(/throttle\.tiers\.2 \(env TICKWIRE_THROTTLE_TIERS\)/);
  });

  it('unknown TICKWIRE_* environment variable', () => {
    const msg = errorOf(() => loadConfig({ env: { TICKWIRE_GATEWAY_MAX_FRAMES: '10' } }));
    expect(msg).toMatch(/unknown environment variable TICKWIRE_GATEWAY_MAX_FRAMES/);
    expect(msg).toMatch(/tickwire config --help/);
    // other variables are none of our business
    expect(() => loadConfig({ env: { HOME: '/root', SOMETHING_ELSE: 'x' } })).not.toThrow();
  });

  it('unknown key in the config file, top level and nested', () => {
    const top = file('top.yaml', 'port: 8081\nprot: 9\n');
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_CONFIG: top } }))).toMatch(/unknown key "prot"/);
    const nested = file('nested.json', JSON.stringify({ gateway: { maxFrameBytes: 4096, maxFrames: 1 } }));
    expect(errorOf(() => loadConfig({ argv: ['--config', nested] }))).toMatch(/unknown key "gateway\.maxFrames"/);
  });

  it('bad type in the config file', () => {
    const f = file('types.yaml', 'port: "eighty"\nsynthetic:\n  rate: -5\n');
    const msg = errorOf(() => loadConfig({ env: { TICKWIRE_CONFIG: f } }));
    expect(msg).toContain(`port (in ${f}; env TICKWIRE_PORT): expected a whole number`);
    expect(msg).toMatch(/synthetic\.rate/);
  });

  it('unreadable or malformed config file', () => {
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_CONFIG: join(dir, 'missing.yaml') } }))).toMatch(/cannot be read/);
    const bad = file('bad.yaml', 'port: [1, 2\n');
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_CONFIG: bad } }))).toMatch(/is not valid YAML/);
    const list = file('list.yaml', '- 1\n- 2\n');
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_CONFIG: list } }))).toMatch(/top level must be a mapping/);
  });

  it('unknown flag and bad flag value', () => {
    expect(errorOf(() => loadConfig({ env: {}, argv: ['--prot=8080'] }))).toMatch(/unknown flag --prot/);
    expect(errorOf(() => loadConfig({ env: {}, argv: ['--gateway.nope', '1'] }))).toMatch(/unknown flag --gateway\.nope/);
    expect(errorOf(() => loadConfig({ env: {}, argv: ['--port=abc'] }))).toMatch(/--port="abc" is not a number/);
    expect(errorOf(() => loadConfig({ env: {}, argv: ['--redis.flushMs=0'] }))).toMatch(/redis\.flushMs/);
  });

  it('the store Redis times: production defaults, settable, validated naming the key', () => {
    expect(loadConfig({ env: {} }).redis).toMatchObject({ commandTimeoutMs: 5000, pingIntervalMs: 2000 });
    expect(loadConfig({ env: {}, argv: ['--redis.commandTimeoutMs=500', '--redis.pingIntervalMs=200'] }).redis).toMatchObject({
      commandTimeoutMs: 500,
      pingIntervalMs: 200,
    });
    expect(errorOf(() => loadConfig({ env: {}, argv: ['--redis.commandTimeoutMs=0'] }))).toMatch(/redis\.commandTimeoutMs/);
    expect(errorOf(() => loadConfig({ env: {}, argv: ['--redis.pingIntervalMs=10'] }))).toMatch(/redis\.pingIntervalMs/);
  });
});

describe('a file named by the configuration that cannot be read', () => {
  it('names the variable, flag or config file that set it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-instr-'));
    try {
      const missing = join(dir, 'missing.json');
      const cfgFile = join(dir, 'tickwire.json');
      writeFileSync(cfgFile, JSON.stringify({ instrumentsFile: missing }));
      const webCfg = join(dir, 'web.json');
      writeFileSync(webCfg, JSON.stringify({ gateway: { webDir: join(dir, 'no-web') } }));
      const cases: [Record<string, string>, string[], string][] = [
        [{ TICKWIRE_INSTRUMENTS_FILE: missing }, [], `instrumentsFile ${missing} (TICKWIRE_INSTRUMENTS_FILE) cannot be read`],
        [{ TICKWIRE_INSTRUMENTS: missing }, [], `instrumentsFile ${missing} (TICKWIRE_INSTRUMENTS) cannot be read`],
        [{}, [`--instrumentsFile=${missing}`], `instrumentsFile ${missing} (flag --instrumentsFile) cannot be read`],
        [{ TICKWIRE_CONFIG: cfgFile }, [], `instrumentsFile ${missing} (instrumentsFile in ${cfgFile}) cannot be read`],
        [{ TICKWIRE_CONFIG: webCfg }, [], `gateway.webDir ${join(dir, 'no-web')} (gateway.webDir in ${webCfg}) is not a directory`],
      ];
      for (const [env, argv, said] of cases) {
        const err = await startEngine({}, { env, argv, roles: { feeds: [] } }).then(
          async (e) => {
            await e.close();
            return undefined;
          },
          (e: unknown) => e as Error,
        );
        expect(err?.message).toContain(said);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('secrets are redacted', () => {
  it('hides values of secret-like keys at any depth and credentials in URLs', () => {
    const out = redactConfig({
      port: 8080,
      redisUrl: 'redis://:hunter2@127.0.0.1:6379/0',
      natsUrl: 'nats://alice:pw@10.0.0.1:4222,nats://10.0.0.2:4222',
      auth: { jwtSecret: 'shh', issuer: 'me', apiKey: 'k', tokens: ['a'] },
      adminPassword: 'p',
      redis: { keyPrefix: 'tickwire:lv:' },
    });
    expect(out).toEqual({
      port: 8080,
      redisUrl: `redis://:${REDACTED}@127.0.0.1:6379/0`,
      natsUrl: `nats://alice:${REDACTED}@10.0.0.1:4222,nats://10.0.0.2:4222`,
      auth: { jwtSecret: REDACTED, issuer: 'me', apiKey: REDACTED, tokens: REDACTED },
      adminPassword: REDACTED,
      redis: { keyPrefix: 'tickwire:lv:' },
    });
    expect(redactUrl('nats://s3cr3t@host:4222')).toBe(`nats://${REDACTED}@host:4222`);
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
  });
});

describe('tickwire config (CLI)', () => {
  it('prints the resolved config as JSON with secrets and URL credentials redacted', () => {
    // secret-like keys of the schema: every one is redacted, whatever section it lives in
    const secretKeys = describeConfig().filter((row) => /secret|token|password/i.test(row.key.split('.').at(-1)!));
    expect(secretKeys.map((row) => row.key)).toEqual(expect.arrayContaining(['auth.jwtSecret', 'auth.serviceToken']));
    const env: Record<string, string> = { REDIS_URL: 'redis://default:topsecret@127.0.0.1:6380', TICKWIRE_SYNTHETIC_RATE: '123' };
    for (const row of secretKeys) env[row.env] = `value-of-${row.env}-0123456789abcdef0123456789abcdef`;
    // auth.serviceTokens is a list of named tokens, given as JSON: the whole list is redacted
    env.TICKWIRE_AUTH_SERVICE_TOKENS = JSON.stringify([
      { name: 'oms', token: 'value-of-TICKWIRE_AUTH_SERVICE_TOKENS-0123456789abcdef', scopes: ['executions:write'] },
    ]);
    const r = cli(['config', '--port=9999'], env);
    expect(r.code, r.stderr).toBe(0);
    const cfg = JSON.parse(r.stdout);
    expect(cfg.port).toBe(9999);
    expect(cfg.synthetic.rate).toBe(123);
    expect(cfg.redisUrl).toBe(`redis://default:${REDACTED}@127.0.0.1:6380`);
    expect(r.stdout).not.toContain('topsecret');
    for (const row of secretKeys) {
      const value = row.key.split('.').reduce((o: any, k) => o?.[k], cfg);
      expect(value, row.key).toBe(REDACTED);
      expect(r.stdout).not.toContain(`value-of-${row.env}`);
    }
  });

  it('--help lists every key with its env name and default', () => {
    const r = cli(['config', '--help']);
    expect(r.code, r.stderr).toBe(0);
    for (const row of describeConfig()) {
      expect(r.stdout).toContain(row.key);
      expect(r.stdout).toContain(row.env);
    }
    expect(r.stdout).toMatch(/redis\.keyPrefix\s+TICKWIRE_REDIS_KEY_PREFIX/);
    expect(r.stdout).toMatch(/^port\s+TICKWIRE_PORT, PORT\s/m); // aliases listed
  });

  it('exits 2 with a message naming the key on bad configuration', () => {
    const flag = cli(['config', '--no-such-key=1']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/configuration error: unknown flag --no-such-key/);
    const env = cli(['config'], { TICKWIRE_SHUTDOWN_TIMEOUT: '5' });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/unknown environment variable TICKWIRE_SHUTDOWN_TIMEOUT/);
    const f = file('cli.yaml', 'ops:\n  prot: 1\n');
    const fileErr = cli(['config', '--config', f]);
    expect(fileErr.code).toBe(2);
    expect(fileErr.stderr).toMatch(/unknown key "ops\.prot"/);
  });
});

describe('values an operator gets wrong in the environment', () => {
  it('two variables of one key set to different values are refused, whatever their order', () => {
    // which one won depended on the order of the environment (PORT after TICKWIRE_PORT: PORT)
    for (const env of [
      { TICKWIRE_PORT: '8080', PORT: '9090' },
      { PORT: '9090', TICKWIRE_PORT: '8080' },
    ]) {
      const msg = errorOf(() => loadConfig({ env }));
      expect(msg).toMatch(/port is set twice, to different values: by TICKWIRE_PORT and by PORT: unset one of them/);
    }
    // a secret's values are not repeated
    const secret = errorOf(() => loadConfig({ env: { TICKWIRE_AUTH_JWT_SECRET: 'a'.repeat(32), TICKWIRE_JWT_SECRET: 'b'.repeat(32) } }));
    expect(secret).toMatch(/auth\.jwtSecret is set twice/);
    expect(secret).not.toContain('aaaa');
    // the same value twice is one setting
    expect(loadConfig({ env: { TICKWIRE_PORT: '9090', PORT: '9090' } }).port).toBe(9090);
    expect(loadConfig({ env: { LOG_LEVEL: 'warn', TICKWIRE_LOG_LEVEL: 'warn' } }).log.level).toBe('warn');
  });

  it('a Redis or NATS URL whose port is out of range is a configuration error naming the variable', () => {
    // REDIS_URL used to pass and end `tickwire start` with "unexpected failure: TypeError: Invalid URL"
    const redis = errorOf(() => loadConfig({ env: { REDIS_URL: 'redis://:pw@127.0.0.1:99999' } }));
    expect(redis).toMatch(/redisUrl \(env REDIS_URL\): .*port 99999 .*1 to 65535/);
    expect(redis).not.toContain('pw');
    expect(errorOf(() => loadConfig({ env: { REDIS_URL: 'redis://127.0.0.1:6379/x' } }))).toMatch(/redisUrl \(env REDIS_URL\): .*database/);
    expect(errorOf(() => loadConfig({ env: { REDIS_URL: 'redis+sentinel://127.0.0.1:0/mymaster' } }))).toMatch(/redisUrl/);
    for (const ok of ['redis://127.0.0.1:6379', 'rediss://u:p@redis.example.com:6380/2', 'redis://[::1]:6379', 'redis://localhost'])
      expect(loadConfig({ env: { REDIS_URL: ok } }).redisUrl).toBe(ok);
    const nats = errorOf(() => loadConfig({ env: { NATS_URL: 'nats://127.0.0.1:4222,nats://127.0.0.1:99999' } }));
    expect(nats).toMatch(/natsUrl \(env NATS_URL\): "nats:\/\/127\.0\.0\.1:99999" is not a NATS server URL: .*port/);
    expect(loadConfig({ env: { NATS_URL: 'nats://127.0.0.1:4222,127.0.0.1:4223' } }).natsUrl).toBe('nats://127.0.0.1:4222,127.0.0.1:4223');
  });

  it('tickwire start with such a REDIS_URL exits 2 naming it, before anything starts', () => {
    const r = cli(['start'], { REDIS_URL: 'redis://:pw@127.0.0.1:99999', PORT: '0' });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/configuration error: invalid configuration:\n {2}redisUrl \(env REDIS_URL\): port 99999 is not a port/);
    expect(r.stderr).not.toMatch(/unexpected failure|pw/);
  });

  it('limits.exemptIps takes IP addresses only: a range or a name is refused, not silently ignored', () => {
    const range = errorOf(() => loadConfig({ env: { TICKWIRE_LIMITS_EXEMPT_IPS: '127.0.0.1,10.0.0.0/8' } }));
    expect(range).toMatch(/limits\.exemptIps\.1 \(env TICKWIRE_LIMITS_EXEMPT_IPS\): "10\.0\.0\.0\/8" is not an IP address/);
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_LIMITS_EXEMPT_IPS: 'proxy.internal' } }))).toMatch(/limits\.exemptIps\.0/);
    expect(loadConfig({ env: { TICKWIRE_LIMITS_EXEMPT_IPS: '10.1.2.3,::1,2001:db8::7' } }).limits.exemptIps).toEqual(['10.1.2.3', '::1', '2001:db8::7']);
  });

  it('every key has a description (config --help and the table in docs/operations.md)', () => {
    const missing = describeConfig()
      .filter((row) => row.description.trim() === '')
      .map((row) => row.key);
    expect(missing).toEqual([]);
  });
});
