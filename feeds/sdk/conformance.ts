import { describe, expect, it } from 'vitest';
import { isCanonicalSymbol } from '../../src/core/symbols.js';
import type { FeedAdapter, FeedContext, FeedLogger, FeedState, TickInput } from './adapter.js';
import type { FakeProvider } from './testing/fake-provider.js';
import { tickValueProblems } from './tick-values.js';

/**
 * The adapter conformance kit. An adapter's test file calls it with a way to start its fake
 * provider and to build the adapter against it; the kit defines the vitest `describe`/`it` blocks
 * every adapter must pass:
 *
 *   runAdapterConformance({
 *     name: 'binance',
 *     startProvider: () => startBinanceFake(),
 *     createAdapter: (p) => new BinanceFeed('binance', { ...options, url: p.url }),
 *     symbols: ['BTC-USD'],
 *     kinds: ['trade', 'quote'],
 *   });
 *
 * It checks that the adapter starts and reports `connected`; emits ticks of each declared kind
 * with canonical symbols, sane times and finite positive prices, and without engine fields;
 * reconnects when the provider drops every connection; stops cleanly (state `stopped`, no tick
 * after stop, its connections closed); and leaves no timer or socket behind.
 */
export type TickKindInput = TickInput['k'];

export interface ConformanceOptions<P extends FakeProvider | undefined> {
  name: string;
  /** start the fake provider (undefined for adapters without a server, e.g. file replay) */
  startProvider: () => Promise<P>;
  createAdapter: (provider: P) => FeedAdapter;
  /** the canonical symbols the adapter is configured for: every tick must carry one of them */
  symbols: readonly string[];
  /** tick kinds the adapter must produce against this provider */
  kinds: readonly TickKindInput[];
  /** whether the adapter reconnects when the provider drops it (default: true when there is a provider) */
  reconnects?: boolean;
  /** per-wait timeout, ms (default 15 s) */
  timeoutMs?: number;
}

/** One running adapter with everything it reported. */
export interface AdapterHarness<P> {
  readonly provider: P;
  readonly adapter: FeedAdapter;
  readonly ticks: TickInput[];
  readonly states: { state: FeedState; detail?: string }[];
  readonly counters: { messages: number; reconnects: number; gaps: number; errors: string[] };
  readonly logs: { level: string; msg: string }[];
  readonly state: FeedState | undefined;
  waitFor(what: string, pred: () => boolean, timeoutMs?: number): Promise<void>;
  /** stop the adapter, then the provider */
  close(): Promise<void>;
}

/** Start a provider and an adapter with a recording context (usable outside the kit, too). */
export async function startHarness<P extends FakeProvider | undefined>(
  startProvider: () => Promise<P>,
  createAdapter: (provider: P) => FeedAdapter,
  defaultTimeoutMs = 15_000,
): Promise<AdapterHarness<P>> {
  const provider = await startProvider();
  const ticks: TickInput[] = [];
  const states: { state: FeedState; detail?: string }[] = [];
  const counters = { messages: 0, reconnects: 0, gaps: 0, errors: [] as string[] };
  const logs: { level: string; msg: string }[] = [];
  const record = (level: string) => (obj: object | string, msg?: string) => {
    logs.push({ level, msg: typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}` });
  };
  const log: FeedLogger = { info: record('info'), warn: record('warn'), error: record('error'), debug: record('debug') };
  const abort = new AbortController();
  let adapter: FeedAdapter;
  try {
    adapter = createAdapter(provider);
  } catch (err) {
    await provider?.close();
    throw err;
  }
  const ctx: FeedContext = {
    emit: (t) => void ticks.push(t),
    status: (state, detail) => void states.push(detail === undefined ? { state } : { state, detail }),
    signal: abort.signal,
    log,
    metrics: {
      message: () => void counters.messages++,
      reconnect: () => void counters.reconnects++,
      gap: (missed = 1) => void (counters.gaps += missed > 0 ? 1 : 0),
      error: (detail) => void counters.errors.push(detail),
    },
  };
  const waitFor = async (what: string, pred: () => boolean, timeoutMs = defaultTimeoutMs): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > deadline) {
        throw new Error(
          `${what}: not seen within ${timeoutMs} ms (states: ${states.map((s) => s.state).join(' > ')}; ticks: ${ticks.length}; errors: ${counters.errors.slice(-3).join(' | ')})`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  let closed = false;
  const harness: AdapterHarness<P> = {
    provider,
    adapter,
    ticks,
    states,
    counters,
    logs,
    get state() {
      return states.at(-1)?.state;
    },
    waitFor,
    async close() {
      if (closed) return;
      closed = true;
      abort.abort();
      await adapter.stop();
      await provider?.close();
    },
  };
  try {
    await adapter.start(ctx);
  } catch (err) {
    await harness.close();
    throw err;
  }
  return harness;
}

const YEAR_2000_NS = 946_684_800_000n * 1_000_000n;

/** Problems with one emitted tick (empty when it is a well-formed canonical tick). */
export function tickProblems(tick: TickInput, symbols: readonly string[]): string[] {
  const p: string[] = [];
  const t = tick as Record<string, unknown>;
  if (!isCanonicalSymbol(tick.sym)) p.push(`sym "${tick.sym}" is not canonical`);
  if (!symbols.includes(tick.sym)) p.push(`sym "${tick.sym}" is not one of the configured symbols ${symbols.join(',')}`);
  for (const f of ['seq', 'ep', 'src']) if (f in t) p.push(`engine field "${f}" must not be set by adapters`);
  const maxNs = (BigInt(Date.now()) + 86_400_000n) * 1_000_000n;
  if (typeof tick.ts === 'bigint' && (tick.ts < YEAR_2000_NS || tick.ts > maxNs)) p.push(`ts ${tick.ts} is not a plausible time in nanoseconds`);
  // the numbers: what the engine refuses from any adapter too (tickValueProblems)
  p.push(...tickValueProblems(tick));
  switch (tick.k) {
    case 'trade':
      if (typeof tick.id !== 'string' || tick.id.length === 0) p.push('trade id must be a non-empty string');
      if (tick.side !== undefined && tick.side !== 'buy' && tick.side !== 'sell') p.push(`trade side ${String(tick.side)} must be buy, sell or absent`);
      break;
    case 'quote':
      break;
    case 'bar':
      if (tick.iv !== '1s' && tick.iv !== '1m') p.push(`bar iv ${String(tick.iv)} must be 1s or 1m`);
      if (typeof tick.closed !== 'boolean') p.push('bar closed must be a boolean');
      break;
    case 'correction':
      if (typeof tick.ref !== 'string' || tick.ref.length === 0) p.push('correction ref must be a non-empty string');
      if (typeof tick.id !== 'string' || tick.id.length === 0) p.push('correction id must be a non-empty string');
      break;
    case 'cancel':
      if (typeof tick.ref !== 'string' || tick.ref.length === 0) p.push('cancel ref must be a non-empty string');
      break;
    case 'status':
      if (tick.status !== undefined && tick.status !== 'trading' && tick.status !== 'halted')
        p.push(`status ${String(tick.status)} must be trading, halted or absent`);
      if (tick.status === undefined && tick.luld === undefined && tick.stale !== true) p.push('status tick must carry a status, a luld band or stale');
      break;
    default:
      p.push(`kind ${(tick as { k: string }).k} is not one adapters emit (trade, quote, bar, correction, cancel, status)`);
  }
  return p;
}

const RESOURCE_KINDS = ['Timeout', 'TCPSocketWrap', 'TCPServerWrap', 'TCPWRAP'];

function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (RESOURCE_KINDS.includes(r)) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}

function leaked(baseline: Record<string, number>): string[] {
  const now = resourceCounts();
  return Object.entries(now)
    .filter(([k, n]) => n > (baseline[k] ?? 0))
    .map(([k, n]) => `${k}: ${n - (baseline[k] ?? 0)} more than before`);
}

/** Define the conformance tests for one adapter (call at the top level of a test file). */
export function runAdapterConformance<P extends FakeProvider | undefined>(opts: ConformanceOptions<P>): void {
  const timeout = opts.timeoutMs ?? 15_000;
  const testTimeout = timeout * 3 + 10_000;
  const start = (): Promise<AdapterHarness<P>> => startHarness(opts.startProvider, opts.createAdapter, timeout);
  const withHarness = async (fn: (h: AdapterHarness<P>) => Promise<void>): Promise<void> => {
    const h = await start();
    try {
      await fn(h);
    } finally {
      await h.close();
    }
  };

  describe(`${opts.name}: adapter conformance`, () => {
    it(
      'starts and reports connected',
      async () => {
        await withHarness(async (h) => {
          expect(typeof h.adapter.id).toBe('string');
          expect(h.adapter.id.length).toBeGreaterThan(0);
          await h.waitFor('state connected', () => h.states.some((s) => s.state === 'connected'));
        });
      },
      testTimeout,
    );

    it(
      `emits normalized ticks of each kind (${opts.kinds.join(', ')})`,
      async () => {
        await withHarness(async (h) => {
          for (const kind of opts.kinds) await h.waitFor(`a ${kind} tick`, () => h.ticks.some((t) => t.k === kind));
        });
      },
      testTimeout,
    );

    it(
      'uses canonical configured symbols, sane times and finite positive prices on every tick',
      async () => {
        await withHarness(async (h) => {
          await h.waitFor('20 ticks', () => h.ticks.length >= 20);
          const bad = h.ticks.map((t) => ({ t, p: tickProblems(t, opts.symbols) })).filter((x) => x.p.length > 0);
          expect(bad.slice(0, 3).map((b) => `${b.t.k} ${b.t.sym}: ${b.p.join('; ')}`)).toEqual([]);
        });
      },
      testTimeout,
    );

    if (opts.reconnects ?? true) {
      it(
        'reconnects after the provider drops the connection, and data flows again',
        async () => {
          await withHarness(async (h) => {
            const provider = h.provider as FakeProvider;
            await h.waitFor('connected with data', () => h.state === 'connected' && h.ticks.length > 0);
            const connectionsBefore = provider.totalConnections;
            provider.dropAll();
            await h.waitFor('state reconnecting', () => h.states.some((s) => s.state === 'reconnecting'));
            await h.waitFor('a new connection', () => provider.totalConnections > connectionsBefore);
            const after = h.ticks.length;
            await h.waitFor('connected again', () => h.state === 'connected');
            await h.waitFor('ticks after the reconnect', () => h.ticks.length > after);
            expect(h.counters.reconnects).toBeGreaterThanOrEqual(1);
          });
        },
        testTimeout,
      );
    }

    it(
      'stops cleanly: state stopped, no tick after stop, provider connections closed',
      async () => {
        await withHarness(async (h) => {
          await h.waitFor('ticks', () => h.ticks.length > 0);
          await h.adapter.stop();
          expect(h.state).toBe('stopped');
          const n = h.ticks.length;
          await new Promise((r) => setTimeout(r, 300));
          expect(h.ticks.length).toBe(n);
          if (h.provider) await h.waitFor('provider sees no open connection', () => (h.provider as FakeProvider).openConnections === 0, 5000);
          // stopping twice is harmless
          await h.adapter.stop();
        });
      },
      testTimeout,
    );

    it(
      'leaves no timers or sockets behind',
      async () => {
        const baseline = resourceCounts();
        const h = await start();
        try {
          await h.waitFor('ticks', () => h.ticks.length > 0);
        } finally {
          await h.close();
        }
        const deadline = Date.now() + 5000;
        let left = leaked(baseline);
        while (left.length > 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 50));
          left = leaked(baseline);
        }
        expect(left).toEqual([]);
      },
      testTimeout,
    );
  });
}
