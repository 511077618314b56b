import { isDeepStrictEqual } from 'node:util';
// `sleep` paces the soak scenario (posting rate, fault gaps, outage lengths): the time is the input
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { TickwireClient } from '../../src/client/index.js';
import type { Update } from '../../src/client/index.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { tickToPayload } from '../../src/fanout/payloads.js';
import { Cluster, postExecution, rssOf, userToken } from '../faults/cluster.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import type { ExecutionBody } from '../faults/cluster.js';
import { Prng } from '../../feeds/synthetic/prng.js';

/**
 * The soak run (npm run soak, and test/soak/soak-short.test.ts for about a minute in CI): a
 * deployment of real processes (nats-server with JetStream, redis-server, a synthetic feed, two
 * gateways) under load from reconnecting SDK clients and an order system posting executions,
 * while NATS, Redis and the second gateway are restarted at random. At the end it checks that
 * - every execution was delivered to its user exactly once, in order, seq contiguous;
 * - every subscribed channel's last value on every client equals the feed's last value (as the
 *   feed left it in Redis when it stopped);
 * - memory did not grow (the feed and the first gateway, which live through the whole run);
 * and prints a summary.
 */
export interface SoakOptions {
  /** how long faults are injected, ms */
  durationMs: number;
  seed: number;
  /** synthetic ticks per second */
  rate: number;
  clients: number;
  /** pause between two faults, ms (random in [min, max]) */
  faultGapMs: [number, number];
  /** how long a stopped server stays down, ms (random in [min, max]) */
  downMs: [number, number];
  /** one execution per user this often, ms */
  executionEveryMs: number;
  log?: (line: string) => void;
}

export interface SoakResult {
  ok: boolean;
  failures: string[];
  summary: string;
}

const SYMBOLS = ['AAPL', 'MSFT', 'BTC-USD', 'ETH-USD', 'EUR-USD', 'USD-JPY'];

/** seeded uniform [0, 1) source: the synthetic feed's PRNG (mulberry32) */
function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}

interface SoakClient {
  user: string;
  gateway: number;
  channels: string[];
  sdk: TickwireClient;
  last: Map<string, unknown>;
  executions: Update[];
  reconnects: number;
  gaps: number;
  posted: ExecutionBody[];
  postFailures: number;
}

interface MemTrack {
  role: string;
  pid: number;
  samples: { t: number; rss: number }[];
}

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const rnd = prng(opts.seed);
  const between = ([lo, hi]: [number, number]): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const failures: string[] = [];
  const faults: Record<string, number> = { nats: 0, redis: 0, gateway: 0 };
  const started = Date.now();
  log(`soak: seed ${opts.seed}, ${Math.round(opts.durationMs / 1000)} s of faults, ${opts.rate} ticks/s, ${opts.clients} clients`);

  const cluster = await Cluster.start({ gateways: 2, synthetic: { rate: opts.rate, seed: opts.seed, symbols: SYMBOLS } });
  const clients: SoakClient[] = [];
  const mem = new Map<number, MemTrack>();
  let sampling: NodeJS.Timeout | undefined;
  try {
    // clients: each its own user, on gateway i % 2, two symbols, throttle 0 or 250
    for (let i = 0; i < opts.clients; i++) {
      const syms = [SYMBOLS[i % SYMBOLS.length]!, SYMBOLS[(i + 3) % SYMBOLS.length]!];
      const c: SoakClient = {
        user: `soak-${i}`,
        gateway: i % 2,
        channels: syms.flatMap((s) => [`quote:${s}`, `ticker:${s}`, `trade:${s}`]),
        sdk: new TickwireClient({
          url: cluster.url(i % 2),
          token: () => userToken(`soak-${i}`),
          encoding: i % 3 === 0 ? 'json' : 'msgpack',
          reconnect: { initialDelayMs: 100, maxDelayMs: 2000 },
          heartbeatIntervalMs: 3000,
          heartbeatTimeoutMs: 5000,
        }),
        last: new Map(),
        executions: [],
        reconnects: 0,
        gaps: 0,
        posted: [],
        postFailures: 0,
      };
      c.sdk.on('data', (u) => {
        if (u.channel === 'executions') c.executions.push(u);
        else c.last.set(u.channel, u.d);
      });
      c.sdk.on('reconnecting', () => c.reconnects++);
      c.sdk.on('gap', () => c.gaps++);
      c.sdk.on('error', () => undefined);
      await c.sdk.connect();
      await c.sdk.subscribe([...c.channels, 'executions'], { throttle: i % 2 ? 250 : 0 });
      clients.push(c);
    }

    const sample = (): void => {
      const now = Date.now();
      for (const role of [cluster.feed, ...cluster.gateways]) {
        const pid = role.pid;
        if (!pid) continue;
        const rss = rssOf(pid);
        if (!rss) continue;
        let m = mem.get(pid);
        if (!m) mem.set(pid, (m = { role: role.name, pid, samples: [] }));
        m.samples.push({ t: now, rss });
      }
    };
    sample();
    sampling = setInterval(sample, 2000);

    // the order system: one execution per user every executionEveryMs, each retried until
    // stored, through whichever gateway answers
    let posting = true;
    let n = 0;
    const posters = clients.map(async (c, idx) => {
      while (posting) {
        const body: ExecutionBody = {
          user: c.user,
          id: `${c.user}-x${++n}`,
          order: `o${n}`,
          sym: 'AAPL',
          side: n % 2 ? 'buy' : 'sell',
          qty: c.posted.length + 1,
          p: 100 + (n % 50),
          t: Date.now(),
        };
        let attempt = idx;
        try {
          await postExecution(() => cluster.http(attempt++ % cluster.gateways.length), body, { timeoutMs: 120_000 });
          c.posted.push(body);
        } catch {
          c.postFailures++;
        }
        await sleep(opts.executionEveryMs);
      }
    });

    // chaos, bounded by the deadline: the first three faults are the three kinds in random order
    // (so even a short run has each), then kinds at random
    const kinds = ['nats', 'redis', 'gateway'] as const;
    const firstKinds = [...kinds].sort(() => rnd() - 0.5);
    const deadline = Date.now() + opts.durationMs;
    while (Date.now() + opts.faultGapMs[0] < deadline) {
      await sleep(Math.min(between(opts.faultGapMs), Math.max(0, deadline - Date.now())));
      if (Date.now() >= deadline) break;
      const kind = firstKinds.shift() ?? kinds[Math.floor(rnd() * kinds.length)]!;
      const down = between(opts.downMs);
      faults[kind]!++;
      if (kind === 'nats') {
        await cluster.nats.stop();
        await sleep(down);
        await cluster.nats.start();
      } else if (kind === 'redis') {
        await cluster.redis.stop();
        await sleep(down);
        await cluster.redis.start();
      } else {
        // always the second gateway: the first lives through the whole run, so its memory is judged
        const g = cluster.gateways[cluster.gateways.length - 1]!;
        await g.stop('SIGKILL');
        await sleep(down);
        await g.start();
      }
      log(`soak: ${Math.round((Date.now() - started) / 1000)} s: restarted ${kind} after ${down} ms down`);
    }

    // settle: everything up, posting stopped, every client back and caught up
    posting = false;
    await Promise.all(posters);
    for (let i = 0; i < cluster.gateways.length; i++) {
      await waitFor(async () => (await fetch(`${cluster.http(i)}/ready`)).status === 200, { what: `gateway ${i} ready`, timeout: 60_000 });
    }
    try {
      await waitFor(() => clients.every((c) => c.sdk.state === 'open' && c.executions.length >= c.posted.length), {
        what: 'every client open and caught up with its executions',
        timeout: 60_000,
      });
    } catch (err) {
      failures.push(String(err));
    }
    await quietFor(1000, 'no repeated execution after the caught-up ones');

    // executions: exactly once, in order
    for (const c of clients) {
      const got = c.executions.map((u) => (u.d as { id: string }).id);
      const want = c.posted.map((b) => b.id);
      if (!isDeepStrictEqual(got, want)) {
        const dup = got.length - new Set(got).size;
        const missing = want.filter((id) => !got.includes(id)).length;
        failures.push(
          `${c.user}: executions delivered ${got.length}, posted ${want.length} (${missing} missing, ${dup} duplicates, order ${isDeepStrictEqual([...got].sort(), [...want].sort()) ? 'differs' : 'n/a'})`,
        );
      }
      const seqs = c.executions.map((u) => u.seq!);
      for (let i = 1; i < seqs.length; i++) {
        if (seqs[i] !== seqs[i - 1]! + 1) {
          failures.push(`${c.user}: executions seq ${seqs[i - 1]} then ${seqs[i]}`);
          break;
        }
      }
      if (c.postFailures > 0) failures.push(`${c.user}: ${c.postFailures} executions could not be posted within 2 minutes`);
    }

    // last values: stop the feed (it flushes its last values to Redis), let the last ticks arrive
    await cluster.feed.stop('SIGTERM');
    await sleep(2000);
    const redis = new Redis(cluster.redis.url, { lazyConnect: true, maxRetriesPerRequest: 2 });
    let compared = 0;
    try {
      await redis.connect();
      for (const c of clients) {
        for (const ch of c.channels) {
          const bytes = await redis.getBuffer(`fault:${ch}`);
          if (!bytes) {
            failures.push(`${c.user}: no last value of ${ch} in Redis`);
            continue;
          }
          const feed = tickToPayload(decodeTick(bytes));
          const mine = c.last.get(ch);
          compared++;
          if (!isDeepStrictEqual(mine, feed)) failures.push(`${c.user}: last ${ch} ${JSON.stringify(mine)} differs from the feed's ${JSON.stringify(feed)}`);
        }
      }
    } finally {
      redis.disconnect();
    }

    // memory: processes that lived through most of the run must not have grown
    clearInterval(sampling);
    sampling = undefined;
    const memLines: string[] = [];
    const runMs = Date.now() - started;
    for (const m of mem.values()) {
      if (m.samples.length < 3) continue;
      const span = m.samples.at(-1)!.t - m.samples[0]!.t;
      // what the process held in the first half of its life (its highest sample there): a
      // process started again during the run (a gateway restart) may still be loading a fifth of
      // the way in on a loaded machine (CI: 92 MiB there, then 218 MiB, the other gateways'
      // steady size), so growth is counted from the first half's peak, not from one early sample
      const warm = Math.max(...m.samples.filter((s) => s.t - m.samples[0]!.t <= span / 2).map((s) => s.rss));
      const end = m.samples.at(-1)!;
      const peak = Math.max(...m.samples.map((s) => s.rss));
      const mb = (b: number): string => `${Math.round(b / 1048576)} MiB`;
      memLines.push(`  ${m.role} pid ${m.pid}: ${mb(warm)} in the first half, ${mb(end.rss)} at the end, peak ${mb(peak)} (${Math.round(span / 1000)} s)`);
      if (span >= runMs / 2 && end.rss > warm * 1.5 + 64 * 1048576) failures.push(`${m.role} pid ${m.pid}: memory grew from ${mb(warm)} to ${mb(end.rss)}`);
    }

    const summary = [
      `soak summary (seed ${opts.seed}, ${Math.round(runMs / 1000)} s)`,
      `  faults: nats ${faults.nats}, redis ${faults.redis}, gateway ${faults.gateway}`,
      `  executions: ${clients.reduce((n, c) => n + c.posted.length, 0)} posted, ${clients.reduce((n, c) => n + c.executions.length, 0)} delivered`,
      `  clients: ${clients.length}, reconnect attempts ${clients.reduce((n, c) => n + c.reconnects, 0)}, seq gaps seen (and repaired by the SDK) ${clients.reduce((n, c) => n + c.gaps, 0)}`,
      `  last values compared with the feed: ${compared}`,
      `  memory:`,
      ...memLines,
      failures.length
        ? `  FAILED:\n${failures.map((f) => `    - ${f}`).join('\n')}`
        : '  OK: every execution once and in order, every last value matches, memory flat',
    ].join('\n');
    log(summary);
    return { ok: failures.length === 0, failures, summary };
  } finally {
    if (sampling) clearInterval(sampling);
    await Promise.allSettled(clients.map((c) => c.sdk.close()));
    await cluster.stop();
  }
}
