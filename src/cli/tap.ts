import { TickwireError } from '../core/errors.js';
import { TickwireClient, type Encoding, type Update } from '../client/index.js';

/**
 * `tickwire tap CHANNEL...`: subscribe and watch updates, as a live table redrawn in place (on a
 * terminal) or as JSON lines (`--json`). Built on the client SDK, so it reconnects, resubscribes
 * and reports gaps like any other client.
 */
export const TAP_USAGE = `usage: tickwire tap CHANNEL... [options]

Subscribe to channels and print their updates.

  CHANNEL            ticker:AAPL, quote:BTC-USD, trade:EUR-USD, bar.1s:NVDA, bar.1m:SYM,
                     bar.5m:SYM, bar.1h:SYM, bar.1d:SYM, book:SYM, status:SYM, portfolio,
                     executions, notifications, system
options:
  --url URL          gateway stream (default ws://127.0.0.1:8080/v1/stream)
  --token T          JWT (default: $TICKWIRE_TOKEN)
  --throttle MS      at most one update per channel per MS (default 0: every update)
  --json             one JSON object per update and line instead of the table
  --encoding E       msgpack (default) or json on the wire
  --count N          exit after N updates
  --since SEQ        executions: replay events after SEQ first
  --retries N        failed connection attempts in a row before giving up (default 8,
                     about half a minute of backoff); counted again after each success
  -h, --help         this text

Exit status: 0 after Ctrl-C or --count updates, 1 when nothing could be subscribed or the
gateway could not be reached (--retries), 2 on bad usage.`;

export const DEFAULT_TAP_URL = 'ws://127.0.0.1:8080/v1/stream';

export interface TapArgs {
  channels: string[];
  url: string;
  token: string | undefined;
  throttle: number | undefined;
  json: boolean;
  encoding: Encoding;
  count: number | undefined;
  since: number | undefined;
  /** failed connection attempts in a row before giving up (the SDK's reconnect maxRetries) */
  retries: number;
  help: boolean;
}

/** `--retries` default: with the SDK's backoff (250 ms doubling, 15 s cap) about half a minute. */
export const DEFAULT_TAP_RETRIES = 8;

export class TapUsageError extends TickwireError<'USAGE'> {
  constructor(message: string) {
    super('USAGE', message);
    this.name = 'TapUsageError';
  }
}

/** Parse `tap` arguments (everything after `tap`). Throws TapUsageError with a message for people. */
export function parseTapArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): TapArgs {
  const out: TapArgs = {
    channels: [],
    url: DEFAULT_TAP_URL,
    token: env.TICKWIRE_TOKEN || undefined,
    throttle: undefined,
    json: false,
    encoding: 'msgpack',
    count: undefined,
    since: undefined,
    retries: DEFAULT_TAP_RETRIES,
    help: false,
  };
  const nonNegInt = (flag: string, v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n))
      throw new TapUsageError(`${flag} takes a whole number of ${flag === '--throttle' ? 'milliseconds' : 'items'}, got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.includes('=')) {
      inline = arg.slice(arg.indexOf('=') + 1);
      arg = arg.slice(0, arg.indexOf('='));
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new TapUsageError(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '-h':
      case '--help':
        out.help = true;
        break;
      case '--json':
        out.json = true;
        break;
      case '--url': {
        const v = value();
        if (!/^wss?:\/\//.test(v)) throw new TapUsageError(`--url must start with ws:// or wss://, got "${v}"`);
        let host = '';
        try {
          host = new URL(v).hostname;
        } catch {
          // not a URL at all: refused below, like one without a host
        }
        if (!host) throw new TapUsageError(`--url must be a ws:// or wss:// URL with a host, e.g. ${DEFAULT_TAP_URL}, got "${v}"`);
        out.url = v;
        break;
      }
      case '--token':
        out.token = value();
        break;
      case '--throttle':
        out.throttle = nonNegInt('--throttle', value());
        break;
      case '--count':
        out.count = nonNegInt('--count', value());
        if (out.count === 0) throw new TapUsageError('--count must be at least 1');
        break;
      case '--since':
        out.since = nonNegInt('--since', value());
        break;
      case '--retries':
        out.retries = nonNegInt('--retries', value());
        break;
      case '--encoding': {
        const v = value();
        if (v !== 'json' && v !== 'msgpack') throw new TapUsageError(`--encoding is msgpack or json, got "${v}"`);
        out.encoding = v;
        break;
      }
      default:
        if (arg.startsWith('-')) throw new TapUsageError(`unknown option ${arg}`);
        out.channels.push(arg);
    }
  }
  if (!out.help && out.channels.length === 0) throw new TapUsageError('name at least one channel, e.g. tickwire tap ticker:AAPL');
  return out;
}

// ---- table ---------------------------------------------------------------------------------

interface RowState {
  update: Update | undefined;
  count: number;
  at: number;
  /** last price shown, to mark the direction of the move */
  dir: 1 | -1 | 0;
  rejected?: string;
}

const num = (v: unknown, digits?: number): string => {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '';
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  return v.toFixed(a >= 1000 ? 2 : a >= 10 ? 3 : a >= 1 ? 4 : 6);
};

/** LAST, BID, ASK, CHG%, INFO for one update, by channel kind. */
export function describeUpdate(u: Update): [string, string, string, string, string] {
  const d = (u.d ?? {}) as Record<string, unknown>;
  switch (u.kind) {
    case 'trade':
      return [num(d.p), '', '', '', [num(d.s), d.side ?? '', d.venue ?? ''].filter(Boolean).join(' ')];
    case 'quote':
      return ['', num(d.bp), num(d.ap), '', `${num(d.bs)} x ${num(d.as)}`];
    case 'ticker':
      // an `empty` day has no last price (p is the previous close); `mid`: prices are quote mids
      return d.empty === true
        ? ['', num(d.bp), num(d.ap), '', `no trade today (prev close ${num(d.pc)})`]
        : [num(d.p), num(d.bp), num(d.ap), num(d.chgp, 2), d.basis === 'mid' ? 'mid prices' : `vol ${num(d.v, 0)}`];
    case 'bar.1s':
    case 'bar.1m':
    case 'bar.5m':
    case 'bar.1h':
    case 'bar.1d':
      // an `empty` bar has no prices of its interval (its trades were cancelled)
      if (d.empty === true) return ['', '', '', '', `empty: no trade left${d.closed ? ' closed' : ''}`];
      return [
        num(d.c),
        '',
        '',
        '',
        `o ${num(d.o)} h ${num(d.h)} l ${num(d.l)} n ${String(d.n ?? '')}${d.basis === 'mid' ? ' mid' : ''}${d.closed ? ' closed' : ''}`,
      ];
    case 'portfolio':
      return [num(d.value, 2), '', '', '', `pnl ${num(d.pnl, 2)} day ${num(d.day_pnl, 2)} ${String(d.ccy ?? '')}`];
    case 'executions':
      return [num(d.p), '', '', '', `${String(d.side ?? '')} ${String(d.qty ?? '')} ${String(d.sym ?? '')} #${String(d.id ?? '')}`];
    case 'system':
      return ['', '', '', '', `[${String(d.level ?? '')}] ${String(d.title ?? '')}: ${String(d.message ?? '')}`];
    case 'status': {
      const luld = d.luld as { up?: number; down?: number } | undefined;
      return [
        '',
        '',
        '',
        '',
        [String(d.status ?? ''), d.reason ? String(d.reason) : '', luld ? `luld ${num(luld.down)}-${num(luld.up)}` : ''].filter(Boolean).join(' '),
      ];
    }
    default:
      return ['', '', '', '', JSON.stringify(d).slice(0, 60)];
  }
}

const HEAD = ['CHANNEL', 'LAST', 'BID', 'ASK', 'CHG%', 'INFO', 'SEQ', 'UPD', 'AGE'];

/** Render the table as lines (no trailing newline); `color` adds ANSI colours for moves. */
export function renderTable(rows: Map<string, RowState>, now: number, width: number, color: boolean): string[] {
  const body = [...rows].map(([ch, r]) => {
    if (r.rejected) return [ch, '', '', '', '', `rejected: ${r.rejected}`, '', '', ''];
    if (!r.update) return [ch, '', '', '', '', 'waiting…', '', '0', ''];
    const [last, bid, ask, chgp, info] = describeUpdate(r.update);
    const age = ((now - r.at) / 1000).toFixed(1) + 's';
    return [ch, last, bid, ask, chgp, info, String(r.update.seq ?? ''), String(r.count), age];
  });
  const widths = HEAD.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const right = new Set([1, 2, 3, 4, 6, 7, 8]);
  const fmt = (row: string[], dir: number): string => {
    const line = row
      .map((cell, i) => (right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
    const cut = line.length > width ? line.slice(0, Math.max(10, width - 1)) + '…' : line;
    if (!color || dir === 0) return cut;
    return (dir > 0 ? '\x1b[32m' : '\x1b[31m') + cut + '\x1b[0m';
  };
  const lines = [fmt(HEAD, 0)];
  [...rows.values()].forEach((r, i) => lines.push(fmt(body[i]!, r.dir)));
  return lines;
}

function priceOf(u: Update): number | undefined {
  const d = (u.d ?? {}) as Record<string, unknown>;
  const v = d.p ?? d.c ?? d.value ?? (typeof d.bp === 'number' && typeof d.ap === 'number' ? (d.bp + d.ap) / 2 : undefined);
  return typeof v === 'number' ? v : undefined;
}

// ---- run -----------------------------------------------------------------------------------

export async function runTap(argv: string[]): Promise<number> {
  let args: TapArgs;
  try {
    args = parseTapArgs(argv, process.env);
  } catch (err) {
    if (err instanceof TapUsageError) {
      process.stderr.write(`tickwire tap: ${err.message}\n\n${TAP_USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (args.help) {
    process.stdout.write(TAP_USAGE + '\n');
    return 0;
  }

  const out = process.stdout;
  const tty = !args.json && out.isTTY === true;
  const client = new TickwireClient({
    url: args.url,
    ...(args.token !== undefined ? { token: args.token } : {}),
    encoding: args.encoding,
    heartbeatIntervalMs: 5000,
    reconnect: { maxRetries: args.retries },
  });
  let opened = false;
  const rows = new Map<string, RowState>(args.channels.map((c) => [c, { update: undefined, count: 0, at: 0, dir: 0 }]));
  const note = (text: string): void => {
    if (!tty) process.stderr.write(`tickwire tap: ${text}\n`);
    else status = text;
  };
  let status = `connecting to ${args.url}`;
  let received = 0;
  let drawnLines = 0;
  let dirty = true;
  const recent: number[] = [];

  const draw = (): void => {
    if (!dirty && tty) return;
    dirty = false;
    const now = Date.now();
    while (recent.length && now - recent[0]! > 1000) recent.shift();
    const width = tty ? out.columns || 120 : 200;
    const rtt = client.latency ? `  rtt ${client.latency.rttMs} ms` : '';
    const header = `tickwire tap  ${args.url}  ${client.state}${rtt}  ${recent.length} upd/s${args.throttle ? `  throttle ${args.throttle} ms` : ''}`;
    const lines = [header.slice(0, width), ...renderTable(rows, now, width, tty), tty ? status.slice(0, width) : ''];
    if (tty) {
      // move to the top of the previous drawing and clear it, then draw again
      out.write((drawnLines ? `\x1b[${drawnLines}F` : '') + '\x1b[J' + lines.join('\n') + '\n');
      drawnLines = lines.length;
    } else {
      out.write(lines.join('\n') + '\n');
    }
  };

  return await new Promise<number>((resolve) => {
    let finished = false;
    let timer: ReturnType<typeof setInterval> | undefined;
    const finish = (code: number): void => {
      if (finished) return;
      finished = true;
      if (timer) clearInterval(timer);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (!args.json) {
        dirty = true;
        draw();
      }
      void client.close().then(() => resolve(code));
    };
    const onSignal = (): void => finish(0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    client.on('data', (u) => {
      if (finished) return;
      const row = rows.get(u.channel);
      received++;
      if (args.json) {
        const line: Record<string, unknown> = { ch: u.channel, seq: u.seq };
        if (u.snapshot) line.snapshot = true;
        if (u.coalesced > 1) line.coalesced = u.coalesced;
        line.d = u.d;
        out.write(JSON.stringify(line) + '\n');
      } else if (row) {
        const prev = row.update ? priceOf(row.update) : undefined;
        const next = priceOf(u);
        row.dir = prev === undefined || next === undefined || next === prev ? row.dir : next > prev ? 1 : -1;
        row.update = u;
        row.count++;
        row.at = Date.now();
        recent.push(row.at);
        dirty = true;
      }
      if (args.count !== undefined && received >= args.count) finish(0);
    });
    client.on('state', ({ state }) => {
      dirty = true;
      if (state === 'open') {
        opened = true;
        status = `subscribed to ${rows.size} channel(s); Ctrl-C to quit`;
      }
    });
    client.on('reconnecting', ({ attempt, delayMs }) =>
      note(
        opened
          ? `connection lost; reconnect attempt ${attempt} of ${args.retries} in ${delayMs} ms`
          : `cannot connect to ${args.url}; retry ${attempt} of ${args.retries} in ${delayMs} ms`,
      ),
    );
    client.on('gap', (g) => note(`gap on ${g.channel}: missed ${g.missed} update(s), refreshing`));
    client.on('rejected', (r) => {
      const row = rows.get(r.channel);
      if (row) row.rejected = `${r.code} ${r.reason}`;
      note(`rejected ${r.channel}: ${r.code} ${r.reason}`);
      dirty = true;
      if ([...rows.values()].every((x) => x.rejected)) finish(1);
    });
    client.on('error', (e) => note(`${e.code}: ${e.message}`));
    /** connect() or a subscribe rejected: the connection is gone for good, or the request was refused */
    const failed = (what: string, err: unknown): void => {
      if (finished) return;
      if ((err as { code?: unknown })?.code === 'RETRIES_EXHAUSTED')
        note(`${opened ? 'lost the connection to' : 'cannot connect to'} ${args.url}: gave up after ${args.retries + 1} attempts (--retries ${args.retries})`);
      else note(`${what}: ${String(err)}`);
      finish(1);
    };

    const opts: { throttle?: number; since?: number } = {};
    if (args.throttle !== undefined) opts.throttle = args.throttle;
    const market = args.channels.filter((c) => c !== 'executions');
    if (market.length) {
      client.subscribe(market, opts).catch((err: unknown) => failed('subscribe failed', err));
    }
    if (args.channels.includes('executions')) {
      client
        .subscribe(['executions'], args.since !== undefined ? { ...opts, since: args.since } : opts)
        .catch((err: unknown) => failed('subscribe failed', err));
    }
    client.connect().catch((err: unknown) => failed('cannot connect', err));
    if (!args.json) timer = setInterval(draw, tty ? 100 : 1000);
  });
}
