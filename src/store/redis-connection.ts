import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { ConfigError } from '../core/errors.js';
import { parseRedisUrl } from '../core/redis-url.js';
import type { SentinelTarget } from '../core/redis-url.js';

/**
 * The one way tickwire opens a Redis connection: a plain `redis://` URL, or Redis Sentinel with
 * `redis+sentinel://host:port,.../<master name>` (see src/core/redis-url.ts). Under Sentinel the
 * client asks the sentinels for the current primary, checks the role of the server it reached,
 * and listens for `+switch-master` (followFailovers; one subscription per sentinel for all the clients
 * of a process) so that after a failover it reconnects to the
 * promoted replica without waiting for its retry backoff; nothing in tickwire restarts.
 */
// ioredis declares `replyMapping` as `T | undefined` in RedisOptions but as `T` in its constructor's
// parameter, which strict optional property types refuse; tickwire never sets it
type ConnectionOptions = Omit<RedisOptions, 'replyMapping'>;

/**
 * For the clients of the stores (last values, bars, alert rules, positions), which never send a
 * blocking command: how long a command waits for Redis's answer before it fails, and how long a
 * connection may go without a byte from Redis while commands wait before it is dropped and opened
 * again. A Redis that stops answering (hung, paused, or behind a dead network path, where the
 * socket stays open for the kernel's retransmission timeout: about 15 minutes) must not hold a
 * read, a write or a commit forever, nor look ready meanwhile.
 */
export const ANSWER_TIMEOUTS = { commandTimeout: 5000, socketTimeout: 5000 } as const;

/** ANSWER_TIMEOUTS with another time (`redis.commandTimeoutMs`). */
export function answerTimeouts(ms: number = ANSWER_TIMEOUTS.commandTimeout): { commandTimeout: number; socketTimeout: number } {
  return { commandTimeout: ms, socketTimeout: ms };
}

/**
 * Sends a PING every `ms` while `redis` is connected, so a Redis that stops answering is noticed
 * (the PING fails after the connection's socketTimeout, which drops the connection: its status
 * leaves `ready`) while no command of the store's own is waiting. Returns the function that stops it.
 */
export function keepAlive(redis: Redis, ms: number): () => void {
  const timer = setInterval(() => {
    if (redis.status === 'ready') redis.ping().catch(() => undefined); // a failure drops the connection
  }, ms);
  timer.unref();
  return () => clearInterval(timer);
}

/** how long a client waits for a sentinel's answer to "which server is the primary?" */
const SENTINEL_ANSWER_TIMEOUT_MS = 5000;

export function createRedis(url: string, options: ConnectionOptions = {}): Redis {
  const target = parseRedisUrl(url);
  if ('error' in target) throw new ConfigError(`redisUrl (REDIS_URL): ${target.error}`);
  if (target.kind === 'url') return new Redis(target.url, options);
  const redis = new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.name,
    role: 'master',
    db: target.db,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.sentinelUsername ? { sentinelUsername: target.sentinelUsername } : {}),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    // not ioredis's own failover detector (option failoverDetector): its subscriptions outlive the
    // connection they were made for, and a `+switch-master` that arrives while the client is
    // asking a sentinel for the primary (it is reconnecting after the primary died) aborts that
    // attempt, which ends the client for good: status `end`, every command then fails with
    // "Connection is closed." (test/faults/redis-sentinel-reconnect.test.ts). followFailovers
    // only moves a client that is connected.
    failoverDetector: false,
    // keep asking the sentinels (one round is every sentinel once): a failover takes seconds
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
    // a sentinel that accepts the connection but never answers (hung, stopped) would hold the
    // client's reconnection forever (ioredis sets no bound by default): give up on it and ask the
    // next one. A sentinel answers in milliseconds; 5 s keeps a loaded machine from skipping a
    // healthy one
    sentinelCommandTimeout: SENTINEL_ANSWER_TIMEOUT_MS,
  });
  followFailovers(redis, target);
  return redis;
}

/** a sentinel's `+switch-master` message: `<master name> <old ip> <old port> <new ip> <new port>` */
const SWITCH_MASTER = '+switch-master';

/**
 * Listens for `+switch-master` on every configured sentinel (redis.io "Sentinel client spec",
 * section "Subscribe to Sentinel events to improve responsiveness") and makes `redis` reconnect,
 * which asks the sentinels for the new primary, when it is connected to another server than the
 * one announced: a primary that hangs or is cut off keeps its connections open. (A server the
 * sentinels demote closes its client connections itself: same spec, "Sentinel failover
 * disconnection".) A client that is not connected is left alone: it is already on its way
 * through the sentinels, and interrupting ioredis while it asks one would end the client. The
 * client joins the process's listeners (switchListeners) with its first connection and leaves
 * them when it is closed.
 */
function followFailovers(redis: Redis, target: SentinelTarget): void {
  let leave: (() => void) | undefined;
  const onSwitch = (message: string): void => {
    const [name, , , host, port] = message.split(' ');
    if (name !== target.name) return;
    // 'connect': connected, still checking the server's role; the attempt itself is over
    if (redis.status !== 'ready' && redis.status !== 'connect') return;
    const s = redis.stream;
    if (s.remoteAddress === host && s.remotePort === Number(port)) return; // already on the new primary
    redis.disconnect(true);
  };
  redis.on('ready', () => {
    leave ??= joinSwitchListeners(target, onSwitch);
  });
  redis.on('end', () => {
    leave?.();
    leave = undefined;
  });
}

/** One subscription per sentinel for every client of the process that uses the same sentinels. */
interface SwitchListeners {
  readonly connections: Redis[];
  readonly clients: Set<(message: string) => void>;
}

/** by sentinel set and credentials (see switchListenersKey) */
const switchListeners = new Map<string, SwitchListeners>();

function switchListenersKey(target: SentinelTarget): string {
  const sentinels = target.sentinels.map((s) => `${s.host}:${s.port}`).sort();
  return JSON.stringify([sentinels, target.sentinelUsername ?? null, target.sentinelPassword ?? null]);
}

/**
 * Adds `onSwitch` to the process's listeners for `target`'s sentinels, opening them for the first
 * client; the returned function removes it and closes them after the last one. A process has
 * several Redis clients (last values, the execution log, notifications, alerts, bars), and one
 * connection per sentinel serves all of them, whatever master name each follows.
 */
function joinSwitchListeners(target: SentinelTarget, onSwitch: (message: string) => void): () => void {
  const key = switchListenersKey(target);
  let shared = switchListeners.get(key);
  if (!shared) {
    const clients = new Set<(message: string) => void>();
    const connections = target.sentinels.map((s) => {
      const l = new Redis({
        host: s.host,
        port: s.port,
        ...(target.sentinelUsername ? { username: target.sentinelUsername } : {}),
        ...(target.sentinelPassword ? { password: target.sentinelPassword } : {}),
        enableReadyCheck: false,
        maxRetriesPerRequest: null,
        retryStrategy: (times) => Math.min(100 * times, 2000),
        connectionName: 'tickwire-failover',
      });
      l.on('error', () => undefined); // a sentinel that is down is retried; the others still announce
      l.on('message', (channel: string, message: string) => {
        if (channel !== SWITCH_MASTER) return;
        for (const f of [...clients]) f(message);
      });
      l.subscribe(SWITCH_MASTER).catch(() => undefined); // resubscribed on every reconnection
      return l;
    });
    shared = { connections, clients };
    switchListeners.set(key, shared);
  }
  const mine = shared;
  mine.clients.add(onSwitch);
  return () => {
    mine.clients.delete(onSwitch);
    if (mine.clients.size > 0 || switchListeners.get(key) !== mine) return;
    switchListeners.delete(key);
    for (const l of mine.connections) l.disconnect();
  };
}
