import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';

/**
 * Docker engine is not available where these tests run: the compose file and the Dockerfile are
 * checked statically (valid YAML, the services and wiring we document, environment that the
 * config schema accepts), not started.
 */
interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  volumes?: string[];
}

const composeText = readFileSync('docker-compose.yml', 'utf8');
const doc = YAML.parseDocument(composeText, { merge: true });
const compose = doc.toJS({ maxAliasCount: 100 }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const tickwireServices = Object.entries(compose.services).filter(([, s]) => s.image === 'tickwire:local');

describe('docker-compose.yml', () => {
  it('is valid YAML', () => {
    expect(doc.errors).toEqual([]);
    expect(doc.warnings).toEqual([]);
  });

  it("keeps Redis's data across a restart: the portfolio's positions and checkpoint and the alert rules live there", () => {
    // a PUT of positions has no log to be rebuilt from (docs/private-streams.md#positions): a Redis
    // without persistence lost every book and the checkpoint at each restart of its container
    const redis = compose.services.redis!;
    const arg = (name: string): string | undefined => redis.command?.[redis.command.indexOf(name) + 1];
    expect(arg('--appendonly')).toBe('yes');
    expect(arg('--appendfsync')).toBe('everysec');
    expect(arg('--maxmemory-policy')).toBe('noeviction');
    expect(redis.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
  });

  it('has NATS with JetStream, Redis, the synthetic feed, two gateways, the portfolio and the alert service', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['alerts', 'feed-synthetic', 'gateway-1', 'gateway-2', 'nats', 'portfolio', 'redis']);
    const nats = compose.services.nats!;
    expect(nats.command).toContain('--jetstream');
    expect(nats.command).toContain('--store_dir');
    expect(compose.volumes).toHaveProperty('nats-data');
    expect(compose.services.redis!.image).toMatch(/^redis:/);
    expect(compose.services['feed-synthetic']!.command).toEqual(['feed', 'synthetic']);
    expect(compose.services['gateway-1']!.command).toEqual(['gateway']);
    expect(compose.services['gateway-2']!.command).toEqual(['gateway']);
    expect(compose.services.portfolio!.command).toEqual(['portfolio']);
    expect(compose.services.alerts!.command).toEqual(['alerts']);
  });

  it('wires every tickwire service to NATS and Redis, after both are healthy', () => {
    expect(tickwireServices).toHaveLength(5);
    for (const [name, s] of tickwireServices) {
      expect(s.build, name).toBe('.');
      expect(s.environment, name).toMatchObject({ NATS_URL: 'nats://nats:4222', REDIS_URL: 'redis://redis:6379' });
      expect(s.depends_on, name).toEqual({ nats: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
      expect(s.stop_grace_period, name).toBeDefined();
    }
    for (const name of ['nats', 'redis']) expect(compose.services[name]!.healthcheck?.test.length).toBeGreaterThan(0);
  });

  it('publishes the two gateways on different loopback ports', () => {
    const ports = ['gateway-1', 'gateway-2'].map((n) => compose.services[n]!.ports);
    expect(ports).toEqual([['127.0.0.1:8081:8080'], ['127.0.0.1:8082:8080']]);
  });

  it('gives processes without a gateway an ops port for the image HEALTHCHECK', () => {
    expect(compose.services['feed-synthetic']!.environment?.TICKWIRE_OPS_PORT).toBe('9090');
    expect(compose.services.portfolio!.environment?.TICKWIRE_OPS_PORT).toBe('9090');
    expect(compose.services.alerts!.environment?.TICKWIRE_OPS_PORT).toBe('9090');
  });

  it('sets only environment the config schema accepts', () => {
    for (const [name, s] of tickwireServices) {
      // the image sets these; the service environment is added on top
      const env = { HOST: '0.0.0.0', PORT: '8080', ...s.environment };
      expect(() => loadConfig({ env }), name).not.toThrow();
    }
    const gw = loadConfig({ env: compose.services['gateway-1']!.environment! });
    expect(gw.natsUrl).toBe('nats://nats:4222');
    expect(gw.redisUrl).toBe('redis://redis:6379');
    expect(loadConfig({ env: compose.services['feed-synthetic']!.environment! }).ops.port).toBe(9090);
  });
});

describe('Dockerfile', () => {
  const text = readFileSync('Dockerfile', 'utf8');
  const froms = [...text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)].map((m) => [m[1], m[2]]);

  it('is a multi-stage build on node:20-bookworm-slim', () => {
    expect(text).toMatch(/^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
    expect(froms).toEqual([
      ['${NODE_IMAGE}', 'build'],
      ['${NODE_IMAGE}', 'runtime'],
    ]);
    expect(text).toMatch(/COPY --from=build \/app\/dist/);
    expect(text).toMatch(/npm prune --omit=dev/);
  });

  it('checks the native uWS binary at build time, runs as a non-root user, has a HEALTHCHECK', () => {
    const runtime = text.slice(text.search(/^FROM .* AS runtime/m));
    expect(runtime).toMatch(/^RUN node dist\/src\/cli\/main\.js check-uws/m);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime.indexOf('USER node')).toBeGreaterThan(runtime.indexOf('check-uws'));
    expect(runtime).toMatch(/^HEALTHCHECK .*\n?.*dist\/src\/ops\/healthcheck\.js/m);
    expect(runtime).toMatch(/^ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]$/m);
  });

  it('copies only paths that exist in the repository', async () => {
    const { existsSync } = await import('node:fs');
    const sources = [...text.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(sources.length).toBeGreaterThan(3);
    for (const p of sources) expect(existsSync(p), p).toBe(true);
    // and the healthcheck script it runs is built from src/ops/healthcheck.ts
    expect(existsSync('src/ops/healthcheck.ts')).toBe(true);
  });

  it('copies every workspace package manifest before `npm ci`, so each package builds with its dependencies', async () => {
    // `npm run build` builds every workspace (packages/*): a package whose package.json was not
    // there at `npm ci` has none of its dependencies (@tickwire/react without react: tsc fails)
    const { readdirSync, existsSync } = await import('node:fs');
    const build = text.slice(0, text.search(/^FROM .* AS runtime/m));
    const ci = build.search(/^RUN npm ci\b/m);
    expect(ci).toBeGreaterThan(0);
    const packages = readdirSync('packages').filter((p) => existsSync(`packages/${p}/package.json`));
    expect(packages.length).toBeGreaterThanOrEqual(2);
    for (const p of packages) {
      const at = build.search(new RegExp(`^COPY packages/${p}/package\\.json \\./packages/${p}/package\\.json$`, 'm'));
      expect(at, `Dockerfile: COPY packages/${p}/package.json ./packages/${p}/package.json before RUN npm ci`).toBeGreaterThan(0);
      expect(at).toBeLessThan(ci);
    }
  });

  it('.dockerignore keeps local state out of the build context but not what the build copies', () => {
    const ignored = readFileSync('.dockerignore', 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
    for (const needed of ['src', 'feeds', 'web', 'bin', 'package.json', 'package-lock.json']) expect(ignored).not.toContain(needed);
  });
});

describe('scripts/check-runtime-deps.mjs (run by the image build before dev dependencies are pruned)', () => {
  const run = (entry: string): { code: number | null; out: string } => {
    const r = spawnSync(process.execPath, ['scripts/check-runtime-deps.mjs', entry], { encoding: 'utf8', timeout: 30_000 });
    return { code: r.status, out: r.stdout + r.stderr };
  };

  it('passes when everything loaded at run time is a production dependency (type-only imports ignored)', () => {
    const r = run('test/ops/fixtures/runtime-deps/ok.ts');
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/runtime imports of 2 modules are all production dependencies/);
  });

  it('names each devDependency loaded at run time, statically or by a dynamic import, with the importing file', () => {
    const r = run('test/ops/fixtures/runtime-deps/bad.ts');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/fast-check is imported at run time by test\/ops\/fixtures\/runtime-deps\/bad\.ts but is a devDependency/);
    expect(r.out).toMatch(/esbuild is imported at run time by test\/ops\/fixtures\/runtime-deps\/bad\.ts/);
  });

  it('is run in the Dockerfile before the prune', () => {
    const text = readFileSync('Dockerfile', 'utf8');
    const check = text.indexOf('RUN node scripts/check-runtime-deps.mjs');
    expect(check).toBeGreaterThan(0);
    expect(check).toBeLessThan(text.indexOf('npm prune --omit=dev'));
  });
});

describe('the image HEALTHCHECK (src/ops/healthcheck.ts) asks the port the process serves', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-healthcheck-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** exit status of the healthcheck with `env` (nothing of the test runner's own tickwire variables) */
  const check = (env: Record<string, string>): Promise<number | null> => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TICKWIRE_') && !['PORT', 'HOST'].includes(k)));
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/ops/healthcheck.ts'], { env: { ...clean, ...env }, stdio: 'ignore' });
      child.once('exit', (code) => resolve(code));
    });
  };
  /** an HTTP server answering 200 on /health, on a free loopback port */
  const healthy = async (host = '127.0.0.1'): Promise<{ port: number; close: () => void }> => {
    const srv = createServer((req, res) => {
      res.statusCode = req.url === '/health' ? 200 : 404;
      res.end('{}');
    });
    await new Promise<void>((r) => srv.listen(0, host, r));
    return { port: (srv.address() as AddressInfo).port, close: () => srv.close() };
  };

  it('a port or ops.port set in the config file (TICKWIRE_CONFIG) is the one checked', { timeout: 60_000 }, async () => {
    // it read PORT and TICKWIRE_OPS_PORT only: a port from the file was never asked, and the
    // container stayed unhealthy
    const srv = await healthy();
    try {
      const gatewayFile = join(dir, 'gateway.yaml');
      writeFileSync(gatewayFile, `port: ${srv.port}\n`);
      const opsFile = join(dir, 'feed.yaml');
      writeFileSync(opsFile, `ops:\n  port: ${srv.port}\n`);
      const [gateway, ops, env] = await Promise.all([
        check({ TICKWIRE_CONFIG: gatewayFile }),
        check({ TICKWIRE_CONFIG: opsFile }),
        check({ TICKWIRE_OPS_PORT: String(srv.port) }),
      ]);
      expect({ gateway, ops, env }).toEqual({ gateway: 0, ops: 0, env: 0 });
    } finally {
      srv.close();
    }
    // a process bound to one address (HOST) answers there only
    const one = await healthy('127.0.0.2');
    try {
      expect(await check({ HOST: '127.0.0.2', PORT: String(one.port) })).toBe(0);
    } finally {
      one.close();
    }
    // and nothing answering is unhealthy
    const gone = await healthy();
    gone.close();
    expect(await check({ PORT: String(gone.port) })).toBe(1);
  });
});
