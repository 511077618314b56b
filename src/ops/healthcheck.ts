#!/usr/bin/env node
/**
 * Container HEALTHCHECK: GET /health on this process's HTTP port and exit 0 when it answers 200.
 * The port is the ops port when set (feed processes), else the gateway port (PORT /
 * TICKWIRE_PORT, default 8080). Plain env lookups: loading the whole config here would make
 * the check fail for reasons unrelated to health.
 */
const env = process.env;
const opsPort = Number(env.TICKWIRE_OPS_PORT ?? 0);
const port = opsPort > 0 ? opsPort : Number(env.PORT ?? env.TICKWIRE_PORT ?? 8080);
const path = process.argv[2] ?? '/health';

try {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
