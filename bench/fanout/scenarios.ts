/**
 * The benchmark's scenarios and its command line. Full sizes are the targets' sizes; `--quick`
 * shrinks everything for a smoke run of about half a minute.
 */
import { parseArgs } from 'node:util';
import { SERVER_KINDS, type ServerKind } from './shared.js';

export interface FanoutScenario {
  kind: 'fanout';
  id: number;
  title: string;
  clients: number;
  symbols: number;
  perClient: number;
  /** ticks per second over all symbols */
  rate: number;
  /** tickwire's throttle in ms; peers always run unthrottled */
  throttle: number;
  warmupMs: number;
  durationMs: number;
  /** longest wait for the servers to deliver what is queued after the last tick */
  drainTimeoutMs: number;
}

export interface IdleScenario {
  kind: 'idle';
  id: number;
  title: string;
  clients: number;
  settleMs: number;
}

export type Scenario = FanoutScenario | IdleScenario;

export interface Options {
  quick: boolean;
  scenarios: Scenario[];
  servers: ServerKind[];
  /** worker threads per load process */
  workers: number;
  /** most connections one load process opens (open-file limit is per process) */
  maxConnsPerProcess: number;
  /** connection attempts in flight per worker */
  concurrency: number;
  engine: 'tsx' | 'dist';
  /** taskset CPU lists for the server under test, and for load clients + publisher + nats-server */
  serverCpus: string | undefined;
  loadCpus: string | undefined;
  outDir: string;
  /** suffix of the result files (fanout-<time>-<label>.md, latest-<label>.md); quick runs: "quick" */
  label: string;
  write: boolean;
  /** decode frames fully in the load client (msgpackr / JSON.parse) instead of the field readers */
  fullDecode: boolean;
  seed: number;
  /** runs per (scenario, server); the table shows the run with the median CPU per update */
  repeat: number;
  /** longest wait before each measured run for the (shared) machine to be quiet */
  waitQuietMs: number;
  /** the gateway's throttle.batchMs (undefined: its default, 0 = leading edge in the same turn) */
  batchMs: number | undefined;
  /** the gateway's throttle.lanes (undefined: its default) */
  lanes: number | undefined;
  /** hard limit for the whole run */
  deadlineMs: number;
  /** gateway.workers of the tickwire gateway (uWS event loops): the first value for the tables, every value for --saturate */
  gatewayWorkers: number[];
  /** saturation search instead of the tables: the highest tick rate each gatewayWorkers value sustains */
  saturate: boolean;
  /** the saturation search's latency bound: p99 below this (ms) */
  p99LimitMs: number;
  /** probes per configuration in the saturation search */
  probes: number;
  /**
   * --variants: tickwire gateways to compare in one run (rounds interleaved, --repeat rounds),
   * instead of the server list; each with its own throttle settings or checkout
   */
  variants: GatewayVariant[] | undefined;
}

/** One gateway configuration of a --variants comparison. */
export interface GatewayVariant {
  /** as given on the command line, e.g. `50/1` or `burst@/tmp/tickwire-burst` */
  label: string;
  /** throttle.batchMs (undefined: the gateway's default) */
  batchMs: number | undefined;
  /** throttle.lanes (undefined: the gateway's default) */
  lanes: number | undefined;
  /** run the gateway from this checkout (undefined: BENCH_GATEWAY_ROOT or this tree) */
  root: string | undefined;
  /** gateway.workers (undefined: --gateway-workers' first value) */
  workers: number | undefined;
}

/**
 * `--variants` items, comma-separated: `[name=]B[/L][xW][@DIR]` (throttle.batchMs B, throttle.lanes
 * L, gateway.workers W, gateway from checkout DIR) or `[name=]@DIR` (that checkout with its
 * defaults), e.g. `burst=@/tmp/tickwire-burst,50/1,50/1x2,100/2`.
 */
export function parseVariants(raw: string): GatewayVariant[] {
  const out: GatewayVariant[] = [];
  for (const item of raw.split(',').map((x) => x.trim())) {
    const m = /^(?:([\w.-]+)=)?(?:(\d+)(?:\/(\d+))?(?:x(\d+))?)?(?:@(.+))?$/.exec(item);
    if (!item || !m || (m[2] === undefined && m[5] === undefined))
      throw new Error(
        `--variants: "${item}" is not [name=]BATCH_MS[/LANES][xWORKERS][@DIR] or [name=]@DIR (e.g. 50/1,50/1x2,100/2,burst=@/tmp/tickwire-burst)`,
      );
    const batchMs = m[2] === undefined ? undefined : Number(m[2]);
    const lanes = m[3] === undefined ? undefined : Number(m[3]);
    if (batchMs !== undefined && batchMs > 1000) throw new Error(`--variants: batchMs must be from 0 to 1000, got ${batchMs} in "${item}"`);
    if (lanes !== undefined && (lanes < 1 || lanes > 16)) throw new Error(`--variants: lanes must be from 1 to 16, got ${lanes} in "${item}"`);
    const workers = m[4] === undefined ? undefined : Number(m[4]);
    if (workers !== undefined && (workers < 1 || workers > 64)) throw new Error(`--variants: workers must be from 1 to 64, got ${workers} in "${item}"`);
    out.push({ label: m[1] ?? item, batchMs, lanes, root: m[5], workers });
  }
  if (new Set(out.map((v) => v.label)).size !== out.length) throw new Error('--variants: two variants have the same name (name them: name=...)');
  return out;
}

const HELP = `tickwire fan-out benchmark

usage: node --import tsx bench/fanout/run.ts [options]

  --quick                 small numbers, about 30 s end to end
  --scenarios 1,2,3       which scenarios (1 unthrottled fan-out, 2 throttled, 3 idle memory)
  --servers LIST          tickwire,uws,ws,socketio (default all)
  --clients N             override clients of the selected fan-out scenarios
  --scale F               multiply the fan-out scenarios' clients by F (e.g. 0.25 for a box too
                          small to host the full load generator next to the server)
  --symbols M             override symbols in total
  --per-client K          override symbols per client
  --rate R                override ticks per second
  --throttle MS           override tickwire's throttle
  --batch-ms N            the gateway's throttle.batchMs: throttled emissions on an N ms grid
                          (default: the gateway's default, 0 = a quiet channel emits at once)
  --lanes N               the gateway's throttle.lanes: subscribers dealt into N phases of the batch
                          grid (default: the gateway's default)
  --duration SEC          measured seconds per server
  --warmup SEC            warm-up seconds per server
  --idle N                idle connections in scenario 3
  --workers N             worker threads per load process (default 2)
  --max-conns-per-proc N  connections per load process before another is started (default 8000)
  --server-cpus LIST      pin each server under test to these CPUs (taskset), e.g. 0
  --load-cpus LIST        pin load clients, publisher and nats-server to these CPUs, e.g. 1
  --engine tsx|dist       run the gateway from src with tsx (default) or from dist (npm run build first)
  --out DIR               results folder (default bench/results)
  --label NAME            result files fanout-<time>-NAME.md and latest-NAME.md (quick: "quick")
  --no-write              print the table only
  --full-decode           load clients decode whole frames (msgpackr / JSON.parse), not just the checked fields
  --seed N                tick stream seed (default 7)
  --repeat N              runs per scenario and server, interleaved; the table shows the run with
                          the median CPU per update and the notes list every run (default 1)
  --wait-quiet SEC        before each measured run wait up to SEC for the machine to be < 25% busy
                          (default 30, quick 0; other work on a shared box skews latency)
  --deadline SEC          abort everything after this long (default 1800, quick 240, times --repeat)
  --gateway-workers LIST  gateway.workers of the tickwire gateway (uWS event loops sharing the port),
                          e.g. 1,2; the tables use the first value (default 1)
  --saturate              saturation search on scenario 1's shape (unthrottled): for each
                          --gateway-workers value, the highest tick rate with every update delivered
                          and p99 under --p99-limit; starts at --rate, doubles until a probe fails,
                          then bisects (--probes, default 7)
  --p99-limit MS          the saturation search's latency bound (default 50)
  --variants LIST         compare tickwire gateways in one run, rounds interleaved (--repeat N rounds):
                          items [name=]BATCH_MS[/LANES][xWORKERS][@DIR] or [name=]@DIR (a checkout,
                          e.g. the burst flush), e.g. burst=@/tmp/tickwire-burst,50/1,50/1x2,100/2; prints per
                          round the load average and box busy % next to CPU per update (ratio to
                          the first variant in the same round), p50, p99 and socket reads per client
`;

function cpuList(name: string, raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(raw)) throw new Error(`--${name} must be a CPU list such as 0 or 0-1,3, got "${raw}"`);
  return raw;
}

export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      servers: { type: 'string' },
      clients: { type: 'string' },
      scale: { type: 'string' },
      symbols: { type: 'string' },
      'per-client': { type: 'string' },
      rate: { type: 'string' },
      throttle: { type: 'string' },
      'batch-ms': { type: 'string' },
      lanes: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      idle: { type: 'string' },
      workers: { type: 'string' },
      'max-conns-per-proc': { type: 'string' },
      concurrency: { type: 'string' },
      engine: { type: 'string' },
      'server-cpus': { type: 'string' },
      'load-cpus': { type: 'string' },
      out: { type: 'string' },
      label: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      'full-decode': { type: 'boolean', default: false },
      seed: { type: 'string' },
      deadline: { type: 'string' },
      'wait-quiet': { type: 'string' },
      repeat: { type: 'string' },
      'gateway-workers': { type: 'string' },
      saturate: { type: 'boolean', default: false },
      'p99-limit': { type: 'string' },
      probes: { type: 'string' },
      variants: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const num = (name: string, raw: string | undefined, min: number, max: number): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be a number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  const quick = values.quick ?? false;
  const warmupMs = (num('warmup', values.warmup, 0, 600) ?? (quick ? 0.3 : 2)) * 1000;
  const durationMs = (num('duration', values.duration, 0.5, 3600) ?? (quick ? 1.5 : 10)) * 1000;
  const drainTimeoutMs = quick ? 8000 : 20_000;

  const s1: FanoutScenario = quick
    ? { kind: 'fanout', id: 1, title: '', clients: 200, symbols: 50, perClient: 10, rate: 1000, throttle: 0, warmupMs, durationMs, drainTimeoutMs }
    : { kind: 'fanout', id: 1, title: '', clients: 2000, symbols: 200, perClient: 10, rate: 2000, throttle: 0, warmupMs, durationMs, drainTimeoutMs };
  const s2: FanoutScenario = quick
    ? { kind: 'fanout', id: 2, title: '', clients: 300, symbols: 100, perClient: 20, rate: 1000, throttle: 100, warmupMs, durationMs, drainTimeoutMs }
    : { kind: 'fanout', id: 2, title: '', clients: 5000, symbols: 500, perClient: 20, rate: 5000, throttle: 100, warmupMs, durationMs, drainTimeoutMs };
  const s3: IdleScenario = {
    kind: 'idle',
    id: 3,
    title: '',
    clients: num('idle', values.idle, 1, 100_000) ?? (quick ? 500 : 5000),
    settleMs: quick ? 500 : 3000,
  };

  const scale = num('scale', values.scale, 0.001, 10) ?? 1;
  for (const s of [s1, s2]) {
    s.clients = num('clients', values.clients, 1, 100_000) ?? Math.max(1, Math.round(s.clients * scale));
    s.symbols = num('symbols', values.symbols, 1, 9999) ?? s.symbols;
    s.perClient = Math.min(s.symbols, num('per-client', values['per-client'], 1, 1000) ?? s.perClient);
    s.rate = num('rate', values.rate, 1, 1_000_000) ?? s.rate;
    if (values.throttle !== undefined) s.throttle = num('throttle', values.throttle, 0, 60_000)!;
    s.title =
      `${s.clients.toLocaleString('en-US')} clients × ${s.perClient} of ${s.symbols} symbols, ` +
      `${s.rate.toLocaleString('en-US')} ticks/s, tickwire throttle ${s.throttle} ms` +
      (s.throttle > 0 ? ' (peers unthrottled)' : '');
  }
  s3.title = `${s3.clients.toLocaleString('en-US')} idle connections`;

  const all: Scenario[] = [s1, s2, s3];
  const wanted = (values.scenarios ?? '1,2,3').split(',').map((x) => Number(x.trim()));
  const scenarios = all.filter((s) => wanted.includes(s.id));
  if (scenarios.length === 0) throw new Error(`--scenarios must list some of 1,2,3, got "${values.scenarios}"`);

  const servers = (values.servers ?? SERVER_KINDS.join(',')).split(',').map((x) => x.trim()) as ServerKind[];
  for (const s of servers) if (!SERVER_KINDS.includes(s)) throw new Error(`--servers: unknown server "${s}" (use ${SERVER_KINDS.join(', ')})`);

  const engine = values.engine ?? 'tsx';
  if (engine !== 'tsx' && engine !== 'dist') throw new Error(`--engine must be tsx or dist, got "${engine}"`);

  return {
    quick,
    scenarios,
    servers,
    workers: num('workers', values.workers, 1, 16) ?? 2,
    maxConnsPerProcess: num('max-conns-per-proc', values['max-conns-per-proc'], 100, 18_000) ?? 8000,
    concurrency: num('concurrency', values.concurrency, 1, 1000) ?? 32,
    engine,
    serverCpus: cpuList('server-cpus', values['server-cpus']),
    loadCpus: cpuList('load-cpus', values['load-cpus']),
    outDir: values.out ?? 'bench/results',
    label: values.label ?? (quick ? 'quick' : ''),
    write: !values['no-write'],
    fullDecode: values['full-decode'] ?? false,
    seed: num('seed', values.seed, 0, 2 ** 31) ?? 7,
    repeat: num('repeat', values.repeat, 1, 20) ?? 1,
    batchMs: num('batch-ms', values['batch-ms'], 0, 1000),
    lanes: num('lanes', values.lanes, 1, 16),
    waitQuietMs: (num('wait-quiet', values['wait-quiet'], 0, 3600) ?? (quick ? 0 : 30)) * 1000,
    gatewayWorkers: (values['gateway-workers'] ?? '1').split(',').map((x) => num('gateway-workers', x.trim(), 1, 64)!),
    saturate: values.saturate ?? false,
    p99LimitMs: num('p99-limit', values['p99-limit'], 1, 60_000) ?? 50,
    probes: num('probes', values.probes, 1, 30) ?? 7,
    variants: values.variants === undefined ? undefined : parseVariants(values.variants),
    deadlineMs: (num('deadline', values.deadline, 10, 86_400) ?? (quick ? 240 : 1800) * (num('repeat', values.repeat, 1, 20) ?? 1)) * 1000,
  };
}
