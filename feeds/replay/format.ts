import { readFileSync } from 'node:fs';
import type { Tick } from '../../src/core/schema.js';
import type { TickInput } from '../sdk/adapter.js';
import { anyTimeToNs } from '../sdk/time.js';

/**
 * The recording format shared by `tickwire record` (writer) and the replay adapter (reader).
 *
 * JSON lines: one normalized tick per line, e.g.
 *   {"k":"trade","sym":"BTC-USD","ts":"1718000000120000000","id":"3601234567","p":67250.12,"s":0.015,"side":"buy","src":"binance"}
 *   {"k":"quote","sym":"EUR-USD","ts":"1718026201123456789","bp":1.07612,"bs":1000000,"ap":1.07626,"as":1000000,"src":"oanda"}
 * `ts` is nanoseconds since the epoch as a decimal string (exact); readers also accept epoch
 * numbers in s/ms/us/ns (guessed by magnitude) and RFC 3339 strings. `src` is informational.
 *
 * CSV: a header row naming any of the columns below, then one tick per row; empty cells are absent.
 *
 * Both: a line starting with `#` is a comment, except a `#source` line, which says something about
 * one source (`src`) of the recording that its ticks cannot: `#source {"src":"oanda","quotesOnly":true}`
 * (the source publishes quotes and no trades, FeedAdapter.quotesOnly). `tickwire record` writes
 * one for each quote-only feed it hears of on the bus, anywhere in the file (readers take the
 * whole file first). Readers from before it skip it as a comment.
 */
export const CSV_COLUMNS = [
  'k',
  'sym',
  'ts',
  'src',
  'id',
  'p',
  's',
  'side',
  'venue',
  'bp',
  'bs',
  'ap',
  'as',
  'iv',
  't',
  'o',
  'h',
  'l',
  'c',
  'v',
  'n',
  'closed',
  'ref',
  'error',
  'volumeOnly',
  'excluded',
  'highLowOnly',
  'status',
  'reason',
  'code',
  'luldUp',
  'luldDown',
  'stale',
] as const;

const NUMERIC = new Set(['p', 's', 'bp', 'bs', 'ap', 'as', 't', 'o', 'h', 'l', 'c', 'v', 'n', 'luldUp', 'luldDown']);

/** A tick (from the bus or an adapter) as a JSON-ready record. */
export function tickToRecord(tick: Tick | TickInput): Record<string, unknown> {
  const { ts, rt: _rt, ...rest } = tick as Tick;
  const out: Record<string, unknown> = { k: rest.k, sym: rest.sym, ts: ts.toString() };
  for (const [key, value] of Object.entries(rest)) {
    if (key === 'seq' || key === 'ep' || key === 'k' || key === 'sym' || value === undefined) continue;
    out[key] = value;
  }
  return out;
}

export function tickToJsonLine(tick: Tick | TickInput): string {
  return JSON.stringify(tickToRecord(tick));
}

export function csvHeader(): string {
  return CSV_COLUMNS.join(',');
}

export function tickToCsvRow(tick: Tick | TickInput): string {
  const r = tickToRecord(tick);
  // a status's band is two columns in CSV
  const luld = r.luld as { up: number; down: number } | undefined;
  if (luld) {
    r.luldUp = luld.up;
    r.luldDown = luld.down;
  }
  return CSV_COLUMNS.map((c) => (r[c] === undefined ? '' : csvCell(String(r[c])))).join(',');
}

/** A CSV cell, quoted (RFC 4180) when it holds a comma, a quote or a line break (a status reason can). */
function csvCell(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

/** The cells of one CSV line (RFC 4180 quoting: "a,b" and "" inside quotes). */
function csvCells(line: string): string[] {
  const cells: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) {
          v += line.slice(i);
          i = line.length;
          break;
        }
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      const comma = line.indexOf(',', i);
      cells.push(v);
      if (comma < 0) return cells;
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      cells.push((comma < 0 ? line.slice(i) : line.slice(i, comma)).trim());
      if (comma < 0) return cells;
      i = comma + 1;
    }
  }
}

/** One record (parsed JSON or CSV row) to a tick; `where` names it in errors (file:line). */
export function recordToTick(r: Record<string, unknown>, where: string): TickInput {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  const num = (key: string, required: boolean): number | undefined => {
    const v = r[key];
    if (v === undefined || v === null || v === '') {
      if (required) fail(`field "${key}" is missing`);
      return undefined;
    }
    const n = typeof v === 'number' ? v : Number(v);
    if (!Number.isFinite(n)) fail(`field "${key}" is not a number: ${JSON.stringify(v)}`);
    return n;
  };
  /** a flag: true/false (JSON) or "true"/"false" (CSV); absent when missing */
  const flag = (key: string): boolean | undefined => {
    const v = r[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (v === true || v === 'true') return true;
    if (v === false || v === 'false') return false;
    return fail(`field "${key}" must be true or false, got ${JSON.stringify(v)}`);
  };
  const sym = typeof r.sym === 'string' && r.sym ? r.sym : fail('field "sym" is missing');
  let ts: bigint;
  try {
    ts = anyTimeToNs(r.ts);
  } catch (err) {
    return fail(`field "ts": ${(err as Error).message}`);
  }
  switch (r.k) {
    case 'trade': {
      const side = r.side === 'buy' || r.side === 'sell' ? r.side : undefined;
      return {
        k: 'trade',
        sym,
        ts,
        id: r.id === undefined || r.id === '' ? fail('field "id" is missing') : String(r.id),
        p: num('p', true)!,
        s: num('s', true)!,
        ...(side ? { side } : {}),
        ...(r.venue ? { venue: String(r.venue) } : {}),
        // the sale-condition flags (docs/feeds.md, "Trade conditions"); excluded and highLowOnly
        // imply volumeOnly, and excluded (the stricter) wins over highLowOnly
        ...(flag('volumeOnly') || flag('excluded') || flag('highLowOnly') ? { volumeOnly: true as const } : {}),
        ...(flag('excluded') ? { excluded: true as const } : flag('highLowOnly') ? { highLowOnly: true as const } : {}),
      };
    }
    case 'quote': {
      // a side the provider reported empty is absent; both, when its whole book was (docs/feeds.md,
      // "Empty quote sides": a synced Coinbase level2 book that ran empty)
      const bp = num('bp', false);
      const ap = num('ap', false);
      const bs = num('bs', false);
      const as = num('as', false);
      return {
        k: 'quote',
        sym,
        ts,
        ...(bp === undefined ? {} : { bp }),
        ...(ap === undefined ? {} : { ap }),
        ...(bs === undefined ? {} : { bs }),
        ...(as === undefined ? {} : { as }),
      };
    }
    case 'correction': {
      const side = r.side === 'buy' || r.side === 'sell' ? r.side : undefined;
      return {
        k: 'correction',
        sym,
        ts,
        ref: r.ref === undefined || r.ref === '' ? fail('field "ref" is missing') : String(r.ref),
        id: r.id === undefined || r.id === '' ? fail('field "id" is missing') : String(r.id),
        p: num('p', true)!,
        s: num('s', true)!,
        ...(side ? { side } : {}),
        ...(r.venue ? { venue: String(r.venue) } : {}),
        // absent: the provider did not say, and the original trade's flag stays (CorrectionTick)
        ...(flag('volumeOnly') === undefined ? {} : { volumeOnly: flag('volumeOnly')! }),
        // counts in nothing: implies volumeOnly, as on a trade
        ...(flag('excluded') ? { volumeOnly: true, excluded: true as const } : {}),
        // the day's high and low only: implies volumeOnly, as on a trade
        ...(flag('highLowOnly') && !flag('excluded') ? { volumeOnly: true, highLowOnly: true as const } : {}),
      };
    }
    case 'cancel':
      return {
        k: 'cancel',
        sym,
        ts,
        ref: r.ref === undefined || r.ref === '' ? fail('field "ref" is missing') : String(r.ref),
        ...(r.error === true || r.error === 'true' ? { error: true } : {}),
      };
    case 'bar': {
      const iv = r.iv === '1s' || r.iv === '1m' ? r.iv : fail('field "iv" must be 1s or 1m');
      return {
        k: 'bar',
        sym,
        ts,
        iv,
        t: num('t', true)!,
        o: num('o', true)!,
        h: num('h', true)!,
        l: num('l', true)!,
        c: num('c', true)!,
        v: num('v', true)!,
        n: num('n', false) ?? 0,
        closed: r.closed === undefined || r.closed === '' ? true : r.closed === true || r.closed === 'true',
      };
    }
    case 'status': {
      // the symbol's trading status as published (status:SYM): the whole state, so a replay shows
      // the halts and bands of the recording (docs/feeds.md, "Recording and replay")
      const status =
        r.status === undefined || r.status === ''
          ? undefined
          : r.status === 'trading' || r.status === 'halted'
            ? r.status
            : fail('field "status" must be trading or halted');
      const band = r.luld as { up?: unknown; down?: unknown } | undefined;
      const up = band !== undefined && typeof band === 'object' ? band.up : r.luldUp;
      const down = band !== undefined && typeof band === 'object' ? band.down : r.luldDown;
      if ((up === undefined || up === '') !== (down === undefined || down === '')) fail('a LULD band needs both up and down');
      const luld = up === undefined || up === '' ? undefined : { up: Number(up), down: Number(down) };
      if (luld && !(Number.isFinite(luld.up) && Number.isFinite(luld.down))) fail('the LULD band is not two numbers');
      if (status === undefined && !luld) fail('field "status" or "luld" is missing');
      return {
        k: 'status',
        sym,
        ts,
        ...(status ? { status } : {}),
        ...(r.reason ? { reason: String(r.reason) } : {}),
        ...(r.code ? { code: String(r.code) } : {}),
        ...(luld ? { luld } : {}),
        // the status was reported before its feed reconnected (docs/feeds.md): kept on replay
        ...(flag('stale') ? { stale: true as const } : {}),
      };
    }
    default:
      return fail(`field "k" must be trade, quote, bar, correction, cancel or status, got ${JSON.stringify(r.k)}`);
  }
}

/** What a recording says about one of its sources (a `#source` line). */
export interface RecordingSource {
  /** the feed id, as in the `src` of its ticks */
  src: string;
  /** it publishes quotes and no trades (FeedAdapter.quotesOnly): a replay builds its symbols' ticker and bars from mids */
  quotesOnly: boolean;
}

const SOURCE_LINE = '#source';

/** The `#source` line of a source (JSON after the keyword, so a `src` may hold any character). */
export function sourceLine(source: RecordingSource): string {
  return `${SOURCE_LINE} ${JSON.stringify({ src: source.src, quotesOnly: source.quotesOnly })}`;
}

/** A `#source` line (trimmed) as a source; `where` names it in errors (file:line). */
function parseSourceLine(line: string, where: string): RecordingSource {
  let r: unknown;
  try {
    r = JSON.parse(line.slice(SOURCE_LINE.length));
  } catch (err) {
    throw new Error(`${where}: #source must be followed by JSON, e.g. #source {"src":"oanda","quotesOnly":true}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const o = (r ?? {}) as Record<string, unknown>;
  if (typeof o.src !== 'string' || !o.src) throw new Error(`${where}: #source needs "src", the feed id of the source`);
  if (typeof o.quotesOnly !== 'boolean') throw new Error(`${where}: #source "quotesOnly" must be true or false, got ${JSON.stringify(o.quotesOnly)}`);
  return { src: o.src, quotesOnly: o.quotesOnly };
}

/** a `#source` line, as opposed to a comment (`#sources` or `#source-x` are comments) */
const isSourceLine = (line: string): boolean => line.startsWith(SOURCE_LINE) && /^\s/.test(line.slice(SOURCE_LINE.length));

/** A whole recording as read: its ticks in file order, each tick's `src`, and its sources. */
export interface Recording {
  ticks: TickInput[];
  /** the `src` of each tick (same index), when the line had one */
  srcs: (string | undefined)[];
  /** what the `#source` lines say, by `src` (the last line of a source wins) */
  sources: Map<string, RecordingSource>;
}

const srcOf = (r: Record<string, unknown>): string | undefined => (typeof r.src === 'string' && r.src ? r.src : undefined);

function parseCsv(text: string, path: string): Recording {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  for (const h of header)
    if (!(CSV_COLUMNS as readonly string[]).includes(h)) throw new Error(`${path}:1: unknown column "${h}" (columns: ${CSV_COLUMNS.join(',')})`);
  const out: Recording = { ticks: [], srcs: [], sources: new Map() };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (isSourceLine(line)) {
      const source = parseSourceLine(line, `${path}:${i + 1}`);
      out.sources.set(source.src, source);
      continue;
    }
    if (!line || line.startsWith('#')) continue;
    const cells = csvCells(line);
    const r: Record<string, unknown> = {};
    header.forEach((h, j) => {
      const v = cells[j];
      if (v !== undefined && v !== '') r[h] = NUMERIC.has(h) ? Number(v) : v;
    });
    out.ticks.push(recordToTick(r, `${path}:${i + 1}`));
    out.srcs.push(srcOf(r));
  }
  return out;
}

function parseJsonLines(text: string, path: string): Recording {
  const out: Recording = { ticks: [], srcs: [], sources: new Map() };
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (isSourceLine(t)) {
      const source = parseSourceLine(t, `${path}:${i + 1}`);
      out.sources.set(source.src, source);
      return;
    }
    if (!t || t.startsWith('#')) return;
    let r: unknown;
    try {
      r = JSON.parse(t);
    } catch (err) {
      throw new Error(`${path}:${i + 1}: not JSON: ${(err as Error).message}`, { cause: err });
    }
    out.ticks.push(recordToTick(r as Record<string, unknown>, `${path}:${i + 1}`));
    out.srcs.push(srcOf((r ?? {}) as Record<string, unknown>));
  });
  return out;
}

export type RecordingFormat = 'jsonl' | 'csv';

export function formatOf(path: string, format: RecordingFormat | 'auto' = 'auto'): RecordingFormat {
  if (format !== 'auto') return format;
  return /\.csv$/i.test(path) ? 'csv' : 'jsonl';
}

/** Read a whole recording (JSON lines or CSV by extension), with its sources. Errors name the file and line. */
export function readRecordingFile(path: string, format: RecordingFormat | 'auto' = 'auto'): Recording {
  const text = readFileSync(path, 'utf8');
  return formatOf(path, format) === 'csv' ? parseCsv(text, path) : parseJsonLines(text, path);
}

/** The ticks of a whole recording (readRecordingFile). */
export function readRecording(path: string, format: RecordingFormat | 'auto' = 'auto'): TickInput[] {
  return readRecordingFile(path, format).ticks;
}
