import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { z } from 'zod';
import YAML from 'yaml';
import { ConfigError } from './errors.js';
import { parseRedisUrl } from './redis-url.js';
import { hostEntryProblem } from './hosts.js';
import { originEntryProblem } from './origins.js';
import { problemOf } from './config-messages.js';

/**
 * The one configuration schema. Sources, later ones winning:
 *   defaults < config file (TICKWIRE_CONFIG or --config) < environment (TICKWIRE_*) < flags (--key=value).
 * Unknown keys are rejected with a message naming the key; the result is frozen.
 *
 * Environment names are `TICKWIRE_` + the key path in upper snake case, e.g.
 * gateway.maxFrameBytes -> TICKWIRE_GATEWAY_MAX_FRAME_BYTES. A few conventional names are
 * accepted as aliases (PORT, HOST, NATS_URL, REDIS_URL, LOG_LEVEL, TICKWIRE_JWT_SECRET, ...).
 */
const tier = z.number().int().min(0).max(60_000);
/** largest replay page (a page goes out as batch frames of at most 256 items) */
const MAX_REPLAY_PAGE = 1000;

/**
 * The closed set of service token scopes (docs/auth.md#service-tokens-and-scopes): one per
 * service API and admin route family, read and write apart where it matters.
 */
export const SERVICE_SCOPES = [
  'executions:write',
  'positions:read',
  'positions:write',
  'announcements:write',
  'alerts:read',
  'alerts:write',
  'notifications:read',
  'notifications:write',
  'admin:read',
  'admin:write',
] as const;
export type ServiceScope = (typeof SERVICE_SCOPES)[number];

const ServiceTokenSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'a name of 1 to 64 letters, digits, ".", "_" or "-" (it appears in logs and 403 answers)'),
    token: z.string().min(16, 'a service token of at least 16 characters').optional(),
    tokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'the name of an environment variable holding the token')
      .refine((v) => !v.startsWith('TICKWIRE_'), 'use a variable name without the TICKWIRE_ prefix (those are config keys), e.g. OMS_SERVICE_TOKEN')
      .optional(),
    scopes: z
      .array(z.enum(SERVICE_SCOPES, { message: `unknown scope: use one of ${SERVICE_SCOPES.join(', ')}` }))
      .min(1, `at least one scope: ${SERVICE_SCOPES.join(', ')}`),
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.token === undefined) === (t.tokenEnv === undefined))
      ctx.addIssue({ code: 'custom', path: ['token'], message: `token "${t.name}": set exactly one of token and tokenEnv` });
  });

export const ConfigSchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0').describe('address the gateway listens on'),
    port: z.number().int().min(0).max(65535).default(8080).describe('gateway HTTP/WebSocket port (0 = any free port)'),
    natsUrl: z
      .string()
      .superRefine((v, ctx) => {
        const urls = v.split(',').map((s) => s.trim());
        const form = /^((nats|tls|ws|wss):\/\/)?([^\s:/@]+(:[^\s@/]*)?@)?(\[[0-9a-fA-F:.]+\]|[^\s:/@[\]]+)(:(\d{1,5}))?\/?$/;
        // a port above 65535 passed the form and ended the start with "Invalid URL" (exit 1)
        const bad = urls.find((u) => {
          const port = form.exec(u);
          return port === null || (port[7] !== undefined && (Number(port[7]) < 1 || Number(port[7]) > 65535));
        });
        if (bad !== undefined)
          ctx.addIssue({
            code: 'custom',
            // the URL as given, its user and password left out (they reach the terminal and the service's log)
            message: `"${bad.replace(/^([a-z]+:\/\/)?.*@/i, '$1[redacted]@')}" is not a NATS server URL: give nats://host:port with a port from 1 to 65535, several separated by commas (one per cluster node)`,
          });
      })
      .optional()
      .describe('NATS server URL(s), comma separated (every node of a cluster, see docs/operations.md); unset = in-process bus (embedded mode)'),
    redisUrl: z
      .string()
      .superRefine((v, ctx) => {
        const r = parseRedisUrl(v);
        if ('error' in r) ctx.addIssue({ code: 'custom', message: r.error });
      })
      .optional()
      .describe('Redis for last values and per-user state: redis://host:port, or redis+sentinel://host:port,.../<master> for Sentinel; unset = memory store'),
    instrumentsFile: z.string().optional().describe('JSON or YAML file listing instruments; unset = built-in universe'),
    feeds: z.array(z.string().min(1)).default(['synthetic']).describe('feeds run in-process by `tickwire start`'),
    log: z
      .object({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
          .default('info')
          .describe(
            'least severe log lines written: trace, debug, info, warn, error, fatal, or silent (none); debug and trace also print the stack of a failed start',
          ),
        format: z.enum(['auto', 'json', 'pretty']).default('auto').describe('auto = pretty on a TTY, JSON otherwise'),
      })
      .strict()
      .default({ level: 'info', format: 'auto' }),
    synthetic: z
      .object({
        seed: z.number().int().default(42).describe('random seed: the same seed gives the same market'),
        rate: z.number().min(1).max(1_000_000).default(400).describe('total ticks per second across all symbols'),
        symbols: z.array(z.string().min(1)).optional().describe('symbols to generate; unset = every instrument fed by "synthetic"'),
        bookLevels: z
          .number()
          .int()
          .min(0)
          .max(1000)
          .default(50)
          .describe('order book levels per side around the quotes of crypto symbols (book:SYM); 0 = no books. Book ticks come on top of `rate`'),
      })
      .strict()
      .default({ seed: 42, rate: 400, bookLevels: 50 }),
    gateway: z
      .object({
        maxFrameBytes: z
          .number()
          .int()
          .min(256)
          .max(16 * 1024 * 1024)
          .default(64 * 1024)
          .describe('largest client frame; larger closes with 1009'),
        idleTimeoutSec: z.number().int().min(8).max(960).default(120).describe('WebSocket idle timeout (uWS sends pings)'),
        upstreamReleaseMs: z.number().int().min(0).default(5000).describe('keep a bus subscription this long after its last subscriber leaves'),
        allowUwsFallback: z.boolean().default(false).describe('start even if uWebSockets.js native binary did not load (slow)'),
        webDir: z.string().optional().describe('directory served at / (dashboard); default dist/web'),
        maxSubscriptions: z.number().int().min(1).default(1000).describe('channels per connection'),
        maxConnections: z
          .number()
          .int()
          .min(1)
          .optional()
          .describe('WebSocket connections open at once; beyond it the upgrade gets 503 with Retry-After (unset = the open-file limit less 256, at least 64)'),
        allowedOrigins: z
          .array(
            z.string().superRefine((v, ctx) => {
              const problem = originEntryProblem(v);
              if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
            }),
          )
          .default([])
          .describe(
            "web pages (Origin header) that may open a stream (WebSocket, HTTP streaming) and read GET /v1/bars, e.g. https://app.example.com,https://*.example.com, or *; empty = any. Requests without Origin (non-browser clients) and from the gateway's own pages are always allowed; others get 403 ORIGIN_NOT_ALLOWED (docs/protocol.md, Allowed origins)",
          ),
        allowedHosts: z
          .array(
            z.string().superRefine((v, ctx) => {
              const problem = hostEntryProblem(v);
              if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
            }),
          )
          .default([])
          .describe(
            "host names the gateway is reached at (the Host header), e.g. md.example.com,*.example.com, or * (any); IP addresses, localhost, *.localhost and `host` are always answered. Other requests get 421 HOST_NOT_ALLOWED: a page whose DNS name was re-bound to the gateway's address is not served (docs/operations.md, Host names)",
          ),
        workers: z
          .number()
          .int()
          .min(0)
          .max(256)
          .optional()
          .describe(
            'uWS event loops (worker threads) serving the gateway port in `tickwire gateway` and `tickwire start`; limits, /metrics and /v1/stats count across them (unset or 0 = one per core; 1 = the gateway runs on the main thread)',
          ),
      })
      .strict()
      .default({
        maxFrameBytes: 65536,
        idleTimeoutSec: 120,
        upstreamReleaseMs: 5000,
        allowUwsFallback: false,
        maxSubscriptions: 1000,
        allowedOrigins: [],
        allowedHosts: [],
      }),
    throttle: z
      .object({
        tiers: z.array(tier).min(1).default([0, 50, 100, 250, 500, 1000, 5000]).describe('throttle tiers in ms; requests round up to the next tier'),
        minMs: tier.default(0).describe('deployment minimum throttle in ms'),
        batchMs: z
          .number()
          .int()
          .min(0)
          .max(1000)
          .default(50)
          .describe(
            'throttled emissions (the leading one of a quiet channel included) go out on a grid whose step is the largest divisor of the tier not above N ms (tier 100: 100, tiers 50 and 250: 50): at most one throttled write per socket per step, and a quiet channel waits at most one step; when nothing throttled went out for a whole step, the update of a quiet channel goes out at once (docs/protocol.md#throttling); 0: a quiet channel emits in the same turn (about 3x the CPU per update when many channels tick near their throttle)',
          ),
        lanes: z
          .number()
          .int()
          .min(1)
          .max(16)
          .default(1)
          .describe(
            'with batchMs > 0: connections are dealt into N lanes whose grids are shifted by step / N, so each grid point writes to 1/N of the sockets (a smaller burst, written and read sooner); a socket still gets at most one throttled write per step. seq is per lane. Opt-in: costs gateway CPU per (channel, lane) emission (docs/benchmarks.md)',
          ),
        offscreenMs: tier
          .default(1000)
          .describe(
            'slow tier (ms, rounded up to a tier) for latest-value subscriptions a client marked off-screen with op visibility (docs/protocol.md#visibility)',
          ),
      })
      .strict()
      .default({ tiers: [0, 50, 100, 250, 500, 1000, 5000], minMs: 0, batchMs: 50, lanes: 1, offscreenMs: 1000 }),
    slow: z
      .object({
        highWaterBytes: z
          .number()
          .int()
          .min(1024)
          .default(1024 * 1024)
          .describe('buffered bytes above which a client only gets conflated catch-up'),
        lowWaterBytes: z
          .number()
          .int()
          .min(0)
          .default(64 * 1024)
          .describe('buffered bytes below which a slow client is resynced'),
        hardLimitBytes: z
          .number()
          .int()
          .min(2048)
          .default(4 * 1024 * 1024)
          .describe('buffered bytes at which a client is closed with 4009 at once'),
        stuckMs: z.number().int().min(100).default(10_000).describe('close 4009 when above high water this long'),
        checkMs: z.number().int().min(10).default(250).describe('how often buffered amounts are checked'),
        lagMs: z
          .number()
          .int()
          .min(0)
          .default(5000)
          .describe("read lag (ms): a client that has not read the gateway's ping for this long is treated as slow; 0 = off"),
        lagCloseMs: z.number().int().min(100).default(60_000).describe('read lag (ms) at which the client is closed with 4009'),
        pingMs: z.number().int().min(10).default(1000).describe('how often the gateway pings each client to measure its read lag (ms)'),
      })
      .strict()
      .default({
        highWaterBytes: 1024 * 1024,
        lowWaterBytes: 64 * 1024,
        hardLimitBytes: 4 * 1024 * 1024,
        stuckMs: 10_000,
        checkMs: 250,
        lagMs: 5000,
        lagCloseMs: 60_000,
        pingMs: 1000,
      }),
    shutdownTimeoutMs: z
      .number()
      .int()
      .min(100) // 0 fired the deadline at once: exit 1 with nothing flushed
      .default(10_000)
      .describe('graceful shutdown deadline (ms); past it the process exits 1'),
    redis: z
      .object({
        keyPrefix: z.string().min(1).default('tickwire:lv:').describe('prefix of last-value keys in Redis (one key per channel)'),
        flushMs: z.number().int().min(1).max(10_000).default(50).describe('how often batched last-value writes are flushed to Redis'),
        maxPendingKeys: z.number().int().min(1).default(100_000).describe('distinct keys waiting for a flush; new keys beyond this are dropped (counted)'),
        ackReplicas: z
          .number()
          .int()
          .min(0)
          .max(16)
          .default(0)
          .describe(
            'an execution stored in Redis is acknowledged only once this many replicas have it (Redis WAIT); 0 = when the primary has it (docs/operations.md, Redis Sentinel)',
          ),
        ackTimeoutMs: z
          .number()
          .int()
          .min(10)
          .max(60_000)
          .default(1000)
          .describe('how long an execution waits for redis.ackReplicas; short of them it is refused with 503 (the order system retries, deduplicated by id)'),
        commandTimeoutMs: z
          .number()
          .int()
          .min(100)
          .max(600_000)
          .default(5000)
          .describe(
            'every Redis store (last values, bars, alert rules, positions; the executions and notifications logs with redis.ackTimeoutMs on top when ackReplicas > 0): how long a command waits for Redis to answer before it fails, and a connection with commands waiting goes without a byte before it is dropped and opened again',
          ),
        pingIntervalMs: z
          .number()
          .int()
          .min(100)
          .max(600_000)
          .default(2000)
          .describe(
            'every Redis store (last values, bars, alert rules, positions): how often an idle connection sends a PING, so a Redis that stopped answering shows in /ready',
          ),
      })
      .strict()
      .default({
        keyPrefix: 'tickwire:lv:',
        flushMs: 50,
        maxPendingKeys: 100_000,
        ackReplicas: 0,
        ackTimeoutMs: 1000,
        commandTimeoutMs: 5000,
        pingIntervalMs: 2000,
      }),
    ops: z
      .object({
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(0)
          .describe('HTTP port for /health, /ready, /metrics in processes without a gateway (tickwire feed, portfolio, alerts); 0 = off'),
        metrics: z.boolean().default(true).describe('serve Prometheus metrics at GET /metrics'),
        statsLogSec: z.number().int().min(0).default(60).describe('log a one-line stats summary this often (0 = never)'),
      })
      .strict()
      .default({ port: 0, metrics: true, statsLogSec: 60 }),
    auth: z
      .object({
        mode: z
          .enum(['off', 'optional', 'required'])
          .default('off')
          .describe('off: anonymous only; optional: a token is verified when sent; required: no valid token, 401 at the upgrade (TICKWIRE_AUTH)'),
        jwtSecret: z
          .string()
          .min(32, 'an HMAC secret of at least 32 characters (256 bits)')
          .optional()
          .describe('HS256/384/512 shared secret (TICKWIRE_JWT_SECRET)'),
        jwtPublicKey: z
          .string()
          .min(1)
          .optional()
          .describe('RS/PS/ES/EdDSA public key: PEM, JWK JSON, or a path to a file holding either (TICKWIRE_JWT_PUBLIC_KEY)'),
        jwksUrl: z.string().url().optional().describe('JWKS endpoint of the identity provider, fetched and cached (TICKWIRE_JWT_JWKS_URL)'),
        jwksCacheSec: z.number().int().min(10).default(600).describe('how long a fetched JWKS is trusted before it is fetched again'),
        issuer: z.array(z.string().min(1)).optional().describe('accepted `iss` values; when set, tokens must carry one (TICKWIRE_JWT_ISSUER)'),
        audience: z.array(z.string().min(1)).optional().describe('accepted `aud` values; when set, tokens must carry one (TICKWIRE_JWT_AUDIENCE)'),
        algorithms: z
          .array(z.enum(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']))
          .min(1)
          .default(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'])
          .describe('JWS algorithms accepted (never none); further narrowed to those the configured keys can verify'),
        clockToleranceSec: z.number().int().min(0).max(300).default(5).describe('leeway for exp/nbf/iat against clock skew'),
        requireExp: z.boolean().default(false).describe('refuse tokens without an `exp` claim'),
        expiryWarningSec: z.number().int().min(0).default(30).describe('warn a connection this long before its token expires (0 = no warning)'),
        serviceToken: z
          .string()
          .min(16, 'a service token of at least 16 characters')
          .optional()
          .describe('bearer token of the service API and the admin console, with every scope (TICKWIRE_SERVICE_TOKEN); see auth.serviceTokens'),
        serviceTokens: z
          .array(ServiceTokenSchema)
          .default([])
          .superRefine((list, ctx) => {
            const names = new Set<string>();
            const tokens = new Set<string>();
            list.forEach((t, i) => {
              if (names.has(t.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate name "${t.name}": give every token its own name` });
              names.add(t.name);
              if (t.token !== undefined) {
                // the message names the entry, never the token
                if (tokens.has(t.token))
                  ctx.addIssue({ code: 'custom', path: [i, 'token'], message: `token of "${t.name}" is also another entry's: give each its own token` });
                tokens.add(t.token);
              }
            });
          })
          .describe(
            'named service tokens, each limited to its scopes: [{name, token | tokenEnv, scopes}] (docs/auth.md#service-tokens-and-scopes; env: a JSON array)',
          ),
        entitlementsClaim: z.string().min(1).default('ent').describe('token claim holding market-data entitlements'),
        defaultEntitlement: z.enum(['realtime', 'delayed', 'none']).default('realtime').describe('market data for tokens without the entitlements claim'),
        anonymousEntitlement: z
          .enum(['realtime', 'delayed', 'none'])
          .optional()
          .describe(
            'market data for connections without a token (auth off or optional); unset: realtime with auth off, else auth.defaultEntitlement (no token never sees more than a token)',
          ),
        delayMs: z
          .number()
          .int()
          .min(0)
          .default(15 * 60_000)
          .describe('delay of delayed market data, ms'),
        delayMaxBuffered: z
          .number()
          .int()
          .min(16)
          .default(20_000)
          .describe('updates held per delayed channel; beyond it conflatable updates are thinned and the oldest trades dropped'),
      })
      .strict()
      .prefault({})
      .describe('JWT authentication and entitlements'),
    limits: z
      .object({
        messagesPerSec: z.number().min(0).default(50).describe('client frames per second per connection, sustained (0 = unlimited)'),
        messageBurst: z.number().int().min(1).default(200).describe('client frames a connection may send at once above the sustained rate'),
        rateLimitCloseMs: z.number().int().min(0).default(3000).describe('close 4008 when a connection stays over its message rate this long'),
        messagesPerIpPerSec: z
          .number()
          .min(0)
          .default(500)
          .describe(
            'client frames per second of all the connections of one client IP together (an IPv6 client counts under its /64), sustained, counted as limits.messagesPerSec counts them, across gateway workers; over it frames are dropped with RATE_LIMIT; raise it for addresses many users share, or list a proxy in exemptIps (0 = unlimited)',
          ),
        messageBurstPerIp: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe('client frames the connections of one IP may send at once above limits.messagesPerIpPerSec'),
        connectionsPerUser: z.number().int().min(0).default(20).describe('open connections per token subject (0 = unlimited)'),
        connectionsPerIpPerSec: z
          .number()
          .min(0)
          .default(20)
          .describe('new connections per second per client IP (an IPv6 client counts under its /64), sustained; over it 429 (0 = unlimited)'),
        connectionBurstPerIp: z.number().int().min(1).default(50).describe('new connections an IP may open at once'),
        verifyingPerIp: z
          .number()
          .int()
          .min(0)
          .default(20)
          .describe(
            'new connections (WebSocket upgrades, HTTP-stream opens) of one client IP whose token is being verified at once (an IPv6 client counts under its /64); beyond it 429 with Retry-After before the token is looked at (0 = unlimited)',
          ),
        connectionsPerIp: z
          .number()
          .int()
          .min(0)
          .default(256)
          .describe(
            'open connections (WebSocket, HTTP stream, and upgrades in progress) of one client IP at once (an IPv6 client counts under its /64); beyond it 429 with Retry-After before the token is looked at; raise it for addresses many users share, or list a proxy in exemptIps (0 = unlimited)',
          ),
        httpRequestsPerIpPerSec: z
          .number()
          .min(0)
          .default(10)
          .describe(
            'costly HTTP requests per second per client IP (GET /v1/bars, /v1/auth/check, /v1/stats, /metrics, HTTP-stream opens; an IPv6 client counts under its /64), sustained; over it 429 with Retry-After (0 = unlimited)',
          ),
        httpBurstPerIp: z.number().int().min(1).default(30).describe('costly HTTP requests an IP may make at once'),
        authsPerConnectionPerMin: z
          .number()
          .int()
          .min(0)
          .default(12)
          .describe(
            'in-band {"op":"auth"} frames a connection may send per minute (all at once too); beyond it RATE_LIMIT with the request id, before the token is verified (0 = unlimited)',
          ),
        exemptIps: z
          .array(
            z.string().superRefine((v, ctx) => {
              // matched against the client address as it is (src/gateway/limits.ts): a range or a
              // host name would never match, and the proxy it was meant for would be limited
              if (isIP(v.trim()) === 0)
                ctx.addIssue({
                  code: 'custom',
                  message: `"${v}" is not an IP address: write single addresses (e.g. 10.0.0.5 or 2001:db8::5); ranges (CIDR) and host names are not supported`,
                });
            }),
          )
          .default(['127.0.0.1', '::1'])
          .describe(
            'client IPs that no per-IP limit applies to (open and verifying connections, connection rate, costly HTTP requests, client frames): loopback, local tools, a reverse proxy on the host; an IPv6 entry exempts its /64',
          ),
      })
      .strict()
      .prefault({})
      .describe('per-connection, per-user and per-IP limits'),
    executions: z
      .object({
        retentionSec: z
          .number()
          .int()
          .min(60)
          .default(30 * 86_400)
          .describe('how long executions stay replayable'),
        maxPerUser: z.number().int().min(1).default(10_000).describe('executions kept per user (oldest go first)'),
        dedupWindowSec: z.number().int().min(1).default(86_400).describe('JetStream duplicate window for execution ids (capped at retentionSec)'),
        stream: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, 'use a JetStream stream name: letters, digits, "_" and "-" only')
          .default('TW_EXEC')
          .describe('JetStream stream holding user executions'),
        inboundStream: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, 'use a JetStream stream name: letters, digits, "_" and "-" only')
          .default('TW_EXEC_IN')
          .describe('JetStream stream of executions from order systems (exec.in.<user>)'),
        consumeInbound: z.boolean().default(true).describe('gateways consume exec.in.<user> from NATS'),
        replicas: z.number().int().min(1).max(5).default(1).describe('JetStream replicas of the executions streams'),
        snapshotEvents: z.number().int().min(0).max(1000).default(20).describe('recent executions sent on subscribe without `since`'),
        replayPageSize: z
          .number()
          .int()
          .min(1)
          .max(MAX_REPLAY_PAGE)
          .default(200)
          .describe('executions read and sent per page of a `since` replay; the gateway serves other work between pages'),
        replayPerUserPerSec: z
          .number()
          .int()
          .min(0)
          .default(10_000)
          .describe('replayed executions per second per user, all of its connections together (0 = unlimited)'),
        replayPerGatewayPerSec: z
          .number()
          .int()
          .min(0)
          .default(100_000)
          .describe('replayed executions per second for the whole gateway process (0 = unlimited)'),
        redisKeyPrefix: z.string().min(1).default('tickwire:exec:').describe('prefix of execution log keys when the log is in Redis (embedded with REDIS_URL)'),
      })
      .strict()
      .prefault({})
      .describe('durable per-user executions'),
    portfolio: z
      .object({
        baseCurrency: z
          .string()
          .regex(/^[A-Z]{3,5}$/, 'use a currency code of 3 to 5 capital letters, e.g. USD')
          .default('USD')
          .describe('valuation currency of users who did not set one'),
        publishMs: z.number().int().min(50).default(250).describe('a user portfolio is published at most this often (and only on change)'),
        requestTimeoutMs: z.number().int().min(100).default(3000).describe('gateway to portfolio service request timeout (NATS mode)'),
        redisKeyPrefix: z.string().min(1).default('tickwire:pf:').describe('prefix of position keys in Redis'),
        putStream: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, 'use a JetStream stream name: letters, digits, "_" and "-" only')
          .default('TW_PF_PUT')
          .describe(
            "JetStream stream holding each user's last positions PUT (pf.put.<user>), from which a book the position store lost is rebuilt (NATS mode; executions.replicas)",
          ),
        idleMs: z
          .number()
          .int()
          .min(600_000)
          .default(3_600_000)
          .describe(
            'a book unused this long (no execution, request or gateway serving the user) leaves memory, read back from the store on use; at least 600000 (gateways renew every 300 s)',
          ),
      })
      .strict()
      .prefault({})
      .describe('portfolio valuation service'),
    alerts: z
      .object({
        maxRulesPerUser: z
          .number()
          .int()
          .min(1)
          .default(1000)
          .describe('alert rules one user may hold (fired once-rules count until deleted); beyond it ALERT_LIMIT'),
        maxWindowMs: z
          .number()
          .int()
          .min(1000)
          .max(7 * 86_400_000)
          .default(86_400_000)
          .describe('longest rolling window of a percent-change alert, ms'),
        maxWindowsPerSymbol: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(8)
          .describe(
            'distinct percent-change windows (source and windowMs) one user may have rules on per symbol; each costs the alert service a push per tick of the symbol; beyond it ALERT_LIMIT',
          ),
        maxWindowsPerSymbolAllUsers: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(64)
          .describe(
            'distinct percent-change windows (source and windowMs) the rules of all users may use per symbol (about 1 µs a tick of the symbol each); a rule on a window the symbol has is always accepted; beyond it ALERT_LIMIT',
          ),
        firingsPerUserPerMin: z
          .number()
          .int()
          .min(0)
          .default(600)
          .describe(
            "alert firings one user's rules may have per minute, a minute's worth at once; each is a notification in the durable log; a crossing beyond it is swallowed (counted in suppressed) and its rule parked, not evaluated, until the budget holds a firing again; 0 = no bound",
          ),
        flushMs: z
          .number()
          .int()
          .min(0)
          .max(10_000)
          .default(20)
          .describe('alert state and firings are committed to the store this often before delivery (0 = every tick batch)'),
        redisKeyPrefix: z.string().min(1).default('tickwire:alerts:').describe('prefix of alert rule and state keys in Redis'),
        requestTimeoutMs: z
          .number()
          .int()
          .min(100)
          .default(3000)
          .describe(
            "gateway to alert service request timeout (NATS mode: `tickwire alerts` runs the service); also how long an in-band alert.list may wait behind the same user's earlier lists",
          ),
      })
      .strict()
      .prefault({})
      .describe('price alerts (docs/alerts.md)'),
    notifications: z
      .object({
        maxPerUser: z.number().int().min(1).max(100_000).default(1000).describe('notifications and read markers kept per user (oldest go first)'),
        retentionSec: z
          .number()
          .int()
          .min(60)
          .default(30 * 86_400)
          .describe('how long notifications stay in the log'),
        dedupWindowSec: z.number().int().min(1).default(86_400).describe('JetStream duplicate window for notification ids (capped at retentionSec)'),
        stream: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, 'use a JetStream stream name: letters, digits, "_" and "-" only')
          .default('TW_NOTIF')
          .describe('JetStream stream holding user notifications'),
        inboundStream: z
          .string()
          .regex(/^[A-Za-z0-9_-]+$/, 'use a JetStream stream name: letters, digits, "_" and "-" only')
          .default('TW_NOTIF_IN')
          .describe('JetStream stream of notifications from other services (notif.in.<user>)'),
        consumeInbound: z.boolean().default(true).describe('gateways consume notif.in.<user> from NATS'),
        replicas: z.number().int().min(1).max(5).default(1).describe('JetStream replicas of the notifications streams'),
        redisKeyPrefix: z
          .string()
          .min(1)
          .default('tickwire:notif:')
          .describe('prefix of notification log keys when the log is in Redis (embedded with REDIS_URL)'),
      })
      .strict()
      .prefault({})
      .describe('durable per-user notifications with read state (docs/private-streams.md#notifications)'),
    history: z
      .object({
        windowBars: z
          .number()
          .int()
          .min(1)
          .max(100_000)
          .default(1000)
          .describe('closed bars the bar store keeps per (symbol, interval) for `history` on subscribe and GET /v1/bars (oldest go first)'),
        redisKeyPrefix: z.string().min(1).default('tickwire:bars:').describe('prefix of the bar store keys in Redis (one sorted set per bar channel)'),
        readBarsPerUserPerSec: z
          .number()
          .int()
          .min(0)
          .default(20_000)
          .describe(
            'bars a gateway reads from the bar store per second for one user (`history` on subscribe, GET /v1/bars; anonymous clients: per IP); over it requests wait (0 = off)',
          ),
        readBarsPerGatewayPerSec: z
          .number()
          .int()
          .min(0)
          .default(200_000)
          .describe('bars a gateway process (all its workers) reads from the bar store per second for all clients together; over it requests wait (0 = off)'),
      })
      .strict()
      .prefault({})
      .describe('bar history (docs/protocol.md#bar-history)'),
    book: z
      .object({
        depths: z
          .array(z.number().int().min(1).max(1000))
          .min(1)
          .max(16)
          .default([10, 25, 100])
          .describe('order book depths a `book:SYM` subscription may ask for (levels per side); a request rounds up to the next, the largest is the maximum'),
        maxLevels: z.number().int().min(10).max(100_000).default(1000).describe('price levels kept per side of each order book (the worst go first)'),
        snapshotMs: z
          .number()
          .int()
          .min(10)
          .max(60_000)
          .default(500)
          .describe('how often the ingest stage stores the full book of each changed symbol in the last-value store (gateways start their copy from it)'),
        syncRetryMs: z
          .number()
          .int()
          .min(10)
          .max(60_000)
          .default(200)
          .describe('a gateway whose stored book is older than the updates it holds asks the store again after this long'),
      })
      .strict()
      .prefault({})
      .describe('order books (docs/protocol.md#order-books-booksymbol)'),
  })
  .strict();

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;

const ALIASES: Readonly<Record<string, string>> = {
  PORT: 'port',
  HOST: 'host',
  NATS_URL: 'natsUrl',
  REDIS_URL: 'redisUrl',
  LOG_LEVEL: 'log.level',
  TICKWIRE_INSTRUMENTS: 'instrumentsFile',
  TICKWIRE_AUTH: 'auth.mode',
  TICKWIRE_JWT_SECRET: 'auth.jwtSecret',
  TICKWIRE_JWT_PUBLIC_KEY: 'auth.jwtPublicKey',
  TICKWIRE_JWT_JWKS_URL: 'auth.jwksUrl',
  TICKWIRE_JWT_ISSUER: 'auth.issuer',
  TICKWIRE_JWT_AUDIENCE: 'auth.audience',
  TICKWIRE_SERVICE_TOKEN: 'auth.serviceToken',
};
/** Conventional env names accepted as aliases: env name -> key (docs, `config --help`). */
export const ENV_ALIASES: Readonly<Record<string, string>> = ALIASES;

/**
 * TICKWIRE_ variables that are not configuration keys (read by their own modules): the config and
 * feeds file paths, the CLI's token, and the project's own build and test switches
 * (TICKWIRE_SKIP_PREPARE for npm ci's prepare, TICKWIRE_TEST_FROM_SOURCE for the test suite:
 * README), which a shell may hold while an engine starts.
 */
const NON_CONFIG_ENV = new Set(['TICKWIRE_CONFIG', 'TICKWIRE_FEEDS_FILE', 'TICKWIRE_TOKEN', 'TICKWIRE_SKIP_PREPARE', 'TICKWIRE_TEST_FROM_SOURCE']);

const camelToSnake = (s: string): string => s.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();

type AnySchema = z.ZodType;
function unwrap(s: AnySchema): AnySchema {
  let cur: any = s;
  while (cur?.def && ['default', 'optional', 'nullable', 'prefault'].includes(cur.def.type)) cur = cur.def.innerType;
  return cur as AnySchema;
}

/** Map every leaf key path to its env name. */
function leafPaths(schema: AnySchema, prefix: string[] = []): Map<string, { path: string[]; leaf: AnySchema }> {
  const out = new Map<string, { path: string[]; leaf: AnySchema }>();
  const s: any = unwrap(schema);
  if (s.def.type === 'object') {
    for (const [k, v] of Object.entries(s.shape as Record<string, AnySchema>)) {
      for (const [env, info] of leafPaths(v, [...prefix, k])) out.set(env, info);
    }
  } else {
    out.set('TICKWIRE_' + prefix.map(camelToSnake).join('_'), { path: prefix, leaf: s });
  }
  return out;
}
const ENV_KEYS = leafPaths(ConfigSchema);
const PATH_TO_LEAF = new Map([...ENV_KEYS.values()].map((i) => [i.path.join('.'), i]));

const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;

/** `raw` as the leaf's type; `name` is what the operator wrote (env name or --flag), `key` the key path. */
function coerce(raw: string, leaf: AnySchema, name: string, key?: string): unknown {
  const t = (leaf as any).def.type as string;
  if (t === 'string' || t === 'enum') return raw;
  if (t === 'number') {
    // decimal only: Number() would also take 0x50, 0b1 and Infinity
    const n = Number(raw);
    if (!DECIMAL.test(raw) || !Number.isFinite(n))
      throw new ConfigError(
        `${name}="${raw}" is not a number${key ? ` (${key})` : ''}: write the number alone, without quotes or a unit (the key's name says its unit: Ms, Sec, Bytes)`,
      );
    return n;
  }
  if (t === 'boolean') {
    if (/^(1|true|yes|on)$/i.test(raw)) return true;
    if (/^(0|false|no|off)$/i.test(raw)) return false;
    throw new ConfigError(`${name}="${raw}" is not a boolean${key ? ` (${key})` : ''}: use true or false`);
  }
  if (t === 'array') {
    const trimmed = raw.trim();
    if (trimmed.startsWith('[')) {
      try {
        return JSON.parse(trimmed);
      } catch {
        throw new ConfigError(`${name} is not a valid JSON array${key ? ` (${key})` : ''}: use a,b,c or ["a","b"]`);
      }
    }
    const elem = unwrap((leaf as any).def.element);
    const parts = trimmed === '' ? [] : trimmed.split(',').map((p) => p.trim());
    return parts.map((p) => coerce(p, elem, name, key));
  }
  return raw;
}

function setPath(target: Record<string, any>, path: string[], value: unknown): void {
  let o = target;
  for (const k of path.slice(0, -1)) {
    if (o[k] === undefined || typeof o[k] !== 'object') o[k] = {};
    o = o[k];
  }
  o[path[path.length - 1]!] = value;
}

function deepMerge(a: Record<string, any>, b: Record<string, any>): Record<string, any> {
  const out: Record<string, any> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' && !Array.isArray(out[k])) {
      out[k] = deepMerge(out[k], v);
    } else if (v !== undefined) out[k] = v;
  }
  return out;
}

function readConfigFile(path: string): Record<string, any> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path} (TICKWIRE_CONFIG / --config) cannot be read: ${(err as Error).message}`);
  }
  try {
    const v = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
    if (v === null || v === undefined) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('top level must be a mapping of keys');
    return v;
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** command-line flags of the form --key.path=value or --key.path value */
  argv?: readonly string[];
  /** programmatic overrides (tests, embedding); applied last */
  overrides?: ConfigInput | Record<string, unknown>;
}

function parseFlags(argv: readonly string[], origins: Origins): { values: Record<string, any>; configPath?: string } {
  const values: Record<string, any> = {};
  let configPath: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    let key = a.slice(2);
    let raw: string | undefined;
    let bare = false; // no value: a boolean flag
    const eq = key.indexOf('=');
    if (eq >= 0) {
      raw = key.slice(eq + 1);
      key = key.slice(0, eq);
    } else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) {
      raw = argv[++i];
    } else {
      raw = 'true';
      bare = true;
    }
    if (key === 'config') {
      if (bare) throw new ConfigError('--config needs a path, e.g. --config tickwire.yaml (or set TICKWIRE_CONFIG)');
      configPath = raw;
      continue;
    }
    const info = PATH_TO_LEAF.get(key);
    if (!info) {
      const near = closestKey(key);
      throw new ConfigError(
        `unknown flag --${key}: ${near && PATH_TO_LEAF.has(near) ? `did you mean --${near}? ` : ''}run \`tickwire config --help\` to list the keys`,
      );
    }
    if (bare && (info.leaf as any).def.type !== 'boolean')
      throw new ConfigError(`--${key} needs a value: --${key}=VALUE (tickwire config --help describes it)`);
    setPath(values, info.path, coerce(raw ?? '', info.leaf, `--${key}`, key));
    origins.set(key, `--${key}`);
  }
  return configPath === undefined ? { values } : { values, configPath };
}

/**
 * The environment variable that sets the key at `path`, or of the nearest key above it: an entry
 * of a list (`gateway.allowedOrigins.1`) is set by the list's variable.
 */
function envNameOf(path: readonly PropertyKey[]): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const name = 'TICKWIRE_' + path.slice(0, n).map(String).map(camelToSnake).join('_');
    if (ENV_KEYS.has(name)) return name;
  }
  return undefined;
}

/**
 * Where each key's value came from, as the operator wrote it: key path -> an env name
 * (`PORT`, `TICKWIRE_SLOW_STUCK_MS`), a flag (`--port`), or `in FILE` for a config file key.
 * Error messages name that, not the canonical env name of a key the operator never set.
 */
type Origins = Map<string, string>;

/** Record every key path of a parsed config file (sections too: `log: verbose` is the file's). */
function fileOrigins(v: unknown, file: string, origins: Origins, prefix: string[] = []): void {
  if (prefix.length > 0) origins.set(prefix.join('.'), `in ${file}`);
  if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, c] of Object.entries(v)) fileOrigins(c, file, origins, [...prefix, k]);
}

/** The origin of `path`, or of the nearest key above it (an entry of a list is the list's). */
function originOf(path: readonly PropertyKey[], origins: Origins): string | undefined {
  for (let n = path.length; n > 0; n--) {
    const o = origins.get(path.slice(0, n).map(String).join('.'));
    if (o !== undefined) return o;
  }
  return undefined;
}

/** "correct it to TICKWIRE_X" for a misspelt variable, else a few of the names */
function nearestEnvHint(name: string): string {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(name.length / 5)) + 1;
  for (const env of [...ENV_KEYS.keys(), ...Object.keys(ALIASES)]) {
    const d = editDistance(name, env);
    if (d < bestD) [best, bestD] = [env, d];
  }
  return best !== undefined ? `correct it to ${best}` : `use one of ${[...ENV_KEYS.keys()].slice(0, 4).join(', ')}, ...`;
}

/** The closest key path to a misspelt one (edit distance at most a third of its length). */
function closestKey(wrong: string): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(wrong.length / 3)) + 1;
  for (const k of PATH_TO_LEAF.keys()) {
    const d = editDistance(wrong.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  // a section (gateway, slow) misspelt: compare with the section names too
  for (const k of new Set([...PATH_TO_LEAF.keys()].map((p) => p.split('.').slice(0, -1).join('.')).filter(Boolean))) {
    const d = editDistance(wrong.toLowerCase(), k.toLowerCase());
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** One line per schema issue: the key as the operator wrote it, what is wrong, and the fix. */
function issueLine(iss: z.core.$ZodIssue, origins: Origins): string {
  if (iss.code === 'unrecognized_keys') {
    return iss.keys
      .map((k) => {
        const key = [...iss.path.map(String), k].join('.');
        const where = originOf([...iss.path, k], origins);
        const near = closestKey(key);
        return `unknown key "${key}"${where ? ` ${where}` : ''}: remove it${near ? ` or correct it to "${near}"` : ''} (tickwire config --help lists the keys)`;
      })
      .join('\n  ');
  }
  const key = iss.path.join('.');
  const canonical = envNameOf(iss.path);
  const origin = originOf(iss.path, origins);
  let where: string;
  if (origin === undefined) where = canonical ? `env ${canonical}` : '';
  else if (origin.startsWith('in ')) where = `${origin}${canonical ? `; env ${canonical}` : ''}`;
  else if (origin.startsWith('--')) where = `flag ${origin}`;
  else where = `env ${origin}`;
  // the leaf the issue is about, or the list an entry belongs to
  let leafPath = iss.path.map(String);
  while (leafPath.length > 0 && !PATH_TO_LEAF.has(leafPath.join('.'))) leafPath = leafPath.slice(0, -1);
  const leaf = PATH_TO_LEAF.get(leafPath.join('.'));
  const section = leaf === undefined ? sectionSchema(iss.path.map(String)) : leaf.leaf;
  return `${key}${where ? ` (${where})` : ''}: ${problemOf(iss, section, leafPath.length < iss.path.length)}`;
}

/** The schema of a section (`log`, `gateway`) for a message about the section itself. */
function sectionSchema(path: string[]): AnySchema | undefined {
  let s: any = ConfigSchema;
  for (const k of path) {
    s = (unwrap(s) as any)?.def?.shape?.[k];
    if (s === undefined) return undefined;
  }
  return s;
}

export function loadConfig(opts: LoadConfigOptions = {}): Readonly<Config> {
  const env = opts.env ?? process.env;
  const origins: Origins = new Map();
  const flags = parseFlags(opts.argv ?? [], origins);
  const filePath = flags.configPath ?? env.TICKWIRE_CONFIG;
  const fileOrigin: Origins = new Map();
  let merged: Record<string, any> = filePath ? readConfigFile(filePath) : {};
  if (filePath) fileOrigins(merged, filePath, fileOrigin);
  const envOrigin: Origins = new Map();

  const fromEnv: Record<string, any> = {};
  /** key -> the variables that set it and their values, to refuse two that disagree */
  const envSet = new Map<string, { name: string; value: string }[]>();
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined) continue;
    const alias = ALIASES[name];
    if (!alias && (!name.startsWith('TICKWIRE_') || NON_CONFIG_ENV.has(name) || isForeignKey(name))) continue;
    const info = alias ? PATH_TO_LEAF.get(alias)! : ENV_KEYS.get(name);
    if (!info) throw new ConfigError(`unknown environment variable ${name}: remove it or ${nearestEnvHint(name)} (tickwire config --help lists all)`);
    const key = info.path.join('.');
    const value = coerce(raw, info.leaf, name, key);
    setPath(fromEnv, info.path, value);
    envOrigin.set(key, name);
    (envSet.get(key) ?? envSet.set(key, []).get(key)!).push({ name, value: JSON.stringify(value) });
  }
  // a key's own variable and a conventional alias (TICKWIRE_PORT and PORT): the one read last used
  // to win, and that is the order of the environment, which the operator does not see
  for (const [key, set] of envSet) {
    if (new Set(set.map((s) => s.value)).size < 2) continue;
    const names = set.map((s) => s.name).sort((a, b) => Number(ENV_KEYS.has(b)) - Number(ENV_KEYS.has(a)) || a.localeCompare(b));
    throw new ConfigError(`${key} is set twice, to different values: by ${names.join(' and by ')}: unset one of them (or give both the same value)`);
  }
  merged = deepMerge(merged, fromEnv);
  merged = deepMerge(merged, flags.values);
  if (opts.overrides) merged = deepMerge(merged, opts.overrides as Record<string, any>);
  // later sources win: file < env < flags (overrides are the program's own: no origin)
  for (const [k, v] of [...envOrigin, ...fileOrigin]) if (!origins.has(k)) origins.set(k, v);
  for (const k of envOrigin.keys()) for (const f of fileOrigin.keys()) if (f.startsWith(k + '.')) origins.delete(f);

  const result = ConfigSchema.safeParse(merged, { reportInput: true });
  if (!result.success) {
    const lines = result.error.issues.map((iss) => issueLine(iss, origins));
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const cfg = result.data;
  /** a key as the operator set it: the variable, the flag, the file; the key's variable when it was left at its default */
  const said = (key: string): string => {
    const o = origins.get(key); // the key itself, not its section
    return o === undefined ? (envNameOf(key.split('.')) ?? key) : o.startsWith('in ') ? `${key} ${o}` : o;
  };
  if (cfg.slow.lowWaterBytes >= cfg.slow.highWaterBytes) {
    throw new ConfigError(
      `slow.lowWaterBytes (${cfg.slow.lowWaterBytes}) must be below slow.highWaterBytes (${cfg.slow.highWaterBytes}): lower ${said('slow.lowWaterBytes')} or raise ${said('slow.highWaterBytes')}`,
    );
  }
  if (cfg.slow.hardLimitBytes <= cfg.slow.highWaterBytes) {
    throw new ConfigError(
      `slow.hardLimitBytes (${cfg.slow.hardLimitBytes}) must be above slow.highWaterBytes (${cfg.slow.highWaterBytes}): raise ${said('slow.hardLimitBytes')} or lower ${said('slow.highWaterBytes')}`,
    );
  }
  if (cfg.slow.lagMs > 0 && cfg.slow.lagCloseMs <= cfg.slow.lagMs) {
    throw new ConfigError(
      `slow.lagCloseMs (${cfg.slow.lagCloseMs}) must be above slow.lagMs (${cfg.slow.lagMs}): raise ${said('slow.lagCloseMs')} or lower ${said('slow.lagMs')}`,
    );
  }
  // two stores on one prefix write the same keys with different types (a last value and a bar set)
  const prefixes: [string, string][] = [
    ['redis.keyPrefix', cfg.redis.keyPrefix],
    ['history.redisKeyPrefix', cfg.history.redisKeyPrefix],
    ['executions.redisKeyPrefix', cfg.executions.redisKeyPrefix],
    ['notifications.redisKeyPrefix', cfg.notifications.redisKeyPrefix],
    ['portfolio.redisKeyPrefix', cfg.portfolio.redisKeyPrefix],
    ['alerts.redisKeyPrefix', cfg.alerts.redisKeyPrefix],
  ];
  for (const [i, [a, pa]] of prefixes.entries())
    for (const [b, pb] of prefixes.slice(i + 1))
      if (pa === pb)
        throw new ConfigError(
          `${a} and ${b} are both "${pa}": the two stores would write the same Redis keys; give each its own prefix (${said(a)}, ${said(b)})`,
        );
  const deepest = Math.max(...cfg.book.depths);
  if (deepest > cfg.book.maxLevels) {
    // a depth no book can fill (docs/protocol.md#order-books-booksymbol)
    throw new ConfigError(
      `book.depths (${deepest}) must not exceed book.maxLevels (${cfg.book.maxLevels}): raise ${said('book.maxLevels')} or lower ${said('book.depths')}`,
    );
  }
  if (cfg.auth.mode !== 'off' && !cfg.auth.jwtSecret && !cfg.auth.jwtPublicKey && !cfg.auth.jwksUrl) {
    throw new ConfigError(
      `auth.mode is "${cfg.auth.mode}" but no key is configured: set TICKWIRE_JWT_SECRET, TICKWIRE_JWT_PUBLIC_KEY or TICKWIRE_JWT_JWKS_URL`,
    );
  }
  resolveServiceTokens(cfg.auth, env);
  // without a token, never more than a token without the claim (docs/auth.md#entitlements)
  cfg.auth.anonymousEntitlement ??= cfg.auth.mode === 'off' ? 'realtime' : cfg.auth.defaultEntitlement;
  const frozen = deepFreeze(cfg);
  SET_BY.set(frozen, (key) => {
    const o = origins.get(key);
    if (o === undefined) return envNameOf(key.split('.')) ?? key;
    if (o.startsWith('--')) return `flag ${o}`;
    return o.startsWith('in ') ? `${key} ${o}` : o;
  });
  return frozen;
}

/** loadConfig's results -> where each of their keys was set */
const SET_BY = new WeakMap<object, (key: string) => string>();

/**
 * A key as the operator set it, for a message about its value found wrong after loadConfig (a
 * file that cannot be read): the variable (`TICKWIRE_INSTRUMENTS_FILE` or its alias
 * `TICKWIRE_INSTRUMENTS`), `flag --key`, `key in FILE`; the key's variable when the operator
 * did not set it (a default, or a program's override).
 */
export function configKeySetBy(config: Readonly<Config>, key: string): string {
  return SET_BY.get(config)?.(key) ?? envNameOf(key.split('.')) ?? key;
}

/**
 * Read the `tokenEnv` of every auth.serviceTokens entry into its `token`, and refuse a token that
 * is another entry's or auth.serviceToken (the messages name the entry, never the token).
 */
function resolveServiceTokens(auth: Config['auth'], env: NodeJS.ProcessEnv): void {
  const seen = new Map<string, string>();
  if (auth.serviceToken !== undefined) seen.set(auth.serviceToken, 'auth.serviceToken');
  auth.serviceTokens.forEach((t, i) => {
    const key = `auth.serviceTokens.${i}`;
    if (t.tokenEnv !== undefined) {
      const v = env[t.tokenEnv];
      if (v === undefined || v === '')
        throw new ConfigError(`${key}.tokenEnv: environment variable ${t.tokenEnv} of service token "${t.name}" is not set: set it to the token`);
      if (v.length < 16) throw new ConfigError(`${key}.tokenEnv: ${t.tokenEnv} of service token "${t.name}" is shorter than 16 characters: use a longer token`);
      t.token = v;
    }
    const other = seen.get(t.token!);
    if (other !== undefined) throw new ConfigError(`${key}: the token of "${t.name}" is also the one of ${other}: give each its own token`);
    seen.set(t.token!, `auth.serviceTokens "${t.name}"`);
  });
}

/** Env names owned by other modules (auth, service API, feeds) that share the prefix. */
const foreignPrefixes: string[] = [];
export function registerForeignEnvPrefix(prefix: string): void {
  foreignPrefixes.push(prefix);
}
function isForeignKey(name: string): boolean {
  return foreignPrefixes.some((p) => name.startsWith(p));
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Every key of the schema: its path, its env name and the schema of its value (tests walk it). */
export function configLeaves(): { key: string; env: string; schema: z.ZodType }[] {
  return [...ENV_KEYS.entries()].map(([env, info]) => ({ key: info.path.join('.'), env, schema: info.leaf }));
}

/** Rows for `tickwire config --help` and docs: key, env name, description, default. */
export function describeConfig(): { key: string; env: string; description: string; default: unknown }[] {
  const defaults = ConfigSchema.parse({});
  return [...ENV_KEYS.entries()].map(([env, info]) => {
    let d: any = defaults;
    for (const k of info.path) d = d?.[k];
    let cur: any = null;
    // description lives on the outer (default/optional) wrapper
    let s: any = ConfigSchema;
    for (const k of info.path) {
      s = (unwrap(s) as any).def.shape[k];
      cur = s;
    }
    const desc: string = cur?.description ?? '';
    return { key: info.path.join('.'), env, description: desc, default: d };
  });
}
