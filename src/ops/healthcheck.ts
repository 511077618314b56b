#!/usr/bin/env node
/**
 * Container HEALTHCHECK: GET /health on this process's HTTP port and exit 0 when it answers 200.
 * The port is the ops port when set (processes without a gateway), else the gateway port, read
 * like the process reads them: the config file (TICKWIRE_CONFIG) and the environment (the
 * HEALTHCHECK runs with the container's environment, not with the command's flags). It used to
 * read PORT and TICKWIRE_OPS_PORT alone, so a port set in the config file was never asked.
 * A configuration this check cannot load falls back to those plain lookups: the process itself
 * refuses it at start, and the check must not fail for reasons unrelated to health.
 */
import { loadConfig } from '../core/config.js';

const env = process.env;
let host = '127.0.0.1';
let port: number;
try {
  const cfg = loadConfig({ env });
  port = cfg.ops.port > 0 ? cfg.ops.port : cfg.port;
  // bound to one address (not a wildcard): only that address answers
  if (!['0.0.0.0', '::', '[::]'].includes(cfg.host)) host = cfg.host.includes(':') && !cfg.host.startsWith('[') ? `[${cfg.host}]` : cfg.host;
} catch {
  const opsPort = Number(env.TICKWIRE_OPS_PORT ?? 0);
  port = opsPort > 0 ? opsPort : Number(env.PORT ?? env.TICKWIRE_PORT ?? 8080);
}
const path = process.argv[2] ?? '/health';

try {
  const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(3000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
