import { TickwireClient, type Bar, type Execution, type Portfolio, type Ticker, type Update } from '../src/client/index.js';
import { BarChart, type ChartView } from './chart.js';
import { mountAlerts, OpsSocket } from './alerts.js';
import { mountNotifications } from './notifications.js';
import { assetClassOf, formatMoney, formatPrice, formatSigned, formatVolume, priceDigits, signClass, type AssetClass } from './format.js';

/**
 * The tickwire dashboard. Page parameters:
 *   ?symbols=AAPL,BTC-USD   board symbols (default: a mix of stocks, crypto and forex)
 *   ?token=JWT              enables the portfolio, executions, notifications and alerts panels
 *   ?throttle=250           initial throttle in ms (0, 100, 250, 1000)
 *   ?ws=ws://host/v1/stream gateway (default: the page's own host)
 *   ?encoding=json          wire encoding (default msgpack)
 *   ?interval=1m            chart bar interval: 1s (default), 1m, 5m, 1h, 1d
 */
const DEFAULT_SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'BRK.B', 'BTC-USD', 'ETH-USD', 'SOL-USD', 'EUR-USD', 'GBP-USD', 'USD-JPY'];
const THROTTLES = [0, 100, 250, 1000];

const params = new URLSearchParams(location.search);
const symbols = (params.get('symbols') ?? DEFAULT_SYMBOLS.join(','))
  .split(',')
  .map((s) => s.trim().toUpperCase())
  .filter(Boolean);
const token = params.get('token') || undefined;
const wsUrl = params.get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream`;
let throttle = Number(params.get('throttle') ?? 250);
if (!THROTTLES.includes(throttle)) throttle = 250;
let selected = symbols[0] ?? 'AAPL';
const INTERVALS: Readonly<Record<string, number>> = { '1s': 1000, '1m': 60_000, '5m': 300_000, '1h': 3_600_000, '1d': 86_400_000 };
let interval = params.get('interval') ?? '1s';
if (!(interval in INTERVALS)) interval = '1s';
/** closed bars the chart asks with its subscribe: it opens full, with a time axis */
const CHART_HISTORY = 150;
/** GET /v1/bars on the gateway the page streams from */
const httpBase = wsUrl.replace(/^ws/, 'http').replace(/\/v1\/stream.*$/, '');

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing from index.html`);
  return el as T;
};
const byTestId = (id: string): HTMLElement => {
  const el = document.querySelector<HTMLElement>(`[data-testid="${id}"]`);
  if (!el) throw new Error(`[data-testid=${id}] missing from index.html`);
  return el;
};

// ---- stats (also exposed on window.tickwire for tests and debugging) -------------------------

const stats = {
  total: 0,
  perChannel: {} as Record<string, number>,
  gaps: 0,
  reconnects: 0,
  /** receive times of recent updates, for the updates-per-second figure */
  recent: [] as number[],
};

// ---- board -------------------------------------------------------------------------------

interface Row {
  tr: HTMLTableRowElement;
  cells: Record<'p' | 'chg' | 'chgp' | 'bp' | 'ap' | 'h' | 'l' | 'v', HTMLTableCellElement>;
  last: number | undefined;
}
const rows = new Map<string, Row>();

function buildBoard(): void {
  const body = $<HTMLTableSectionElement>('board-body');
  const groups: Record<AssetClass, string[]> = { stock: [], crypto: [], forex: [] };
  for (const s of symbols) groups[assetClassOf(s)].push(s);
  const titles: Record<AssetClass, string> = { stock: 'Stocks', crypto: 'Crypto', forex: 'Forex' };
  for (const cls of ['stock', 'crypto', 'forex'] as const) {
    if (groups[cls].length === 0) continue;
    const g = body.insertRow();
    g.className = 'group';
    const c = g.insertCell();
    c.colSpan = 9;
    c.textContent = titles[cls];
    for (const sym of groups[cls]) {
      const tr = body.insertRow();
      tr.className = 'row';
      tr.dataset.testid = `row-${sym}`;
      tr.dataset.symbol = sym;
      const name = tr.insertCell();
      name.textContent = sym;
      const cell = (key: string): HTMLTableCellElement => {
        const td = tr.insertCell();
        td.dataset.testid = `${key}-${sym}`;
        td.textContent = '–';
        return td;
      };
      const cells = { p: cell('price'), chg: cell('chg'), chgp: cell('chgp'), bp: cell('bid'), ap: cell('ask'), h: cell('high'), l: cell('low'), v: cell('volume') };
      tr.addEventListener('click', () => selectSymbol(sym));
      rows.set(sym, { tr, cells, last: undefined });
    }
  }
}

function flash(td: HTMLTableCellElement, dir: 'up' | 'down'): void {
  td.classList.remove('flash-up', 'flash-down');
  void td.offsetWidth; // restart the animation
  td.classList.add(dir === 'up' ? 'flash-up' : 'flash-down');
}

function onTicker(u: Update<Ticker>): void {
  const row = u.symbol ? rows.get(u.symbol) : undefined;
  if (!row) return;
  const t = u.d;
  const sym = u.symbol!;
  const c = row.cells;
  if (row.last !== undefined && t.p !== row.last) flash(c.p, t.p > row.last ? 'up' : 'down');
  row.last = t.p;
  row.tr.dataset.price = String(t.p);
  c.p.textContent = formatPrice(sym, t.p);
  c.chg.textContent = formatSigned(t.chg, priceDigits(sym, t.p));
  c.chgp.textContent = formatSigned(t.chgp, 2, '%');
  c.chg.className = c.chgp.className = signClass(t.chg);
  c.bp.textContent = formatPrice(sym, t.bp);
  c.ap.textContent = formatPrice(sym, t.ap);
  c.h.textContent = formatPrice(sym, t.h);
  c.l.textContent = formatPrice(sym, t.l);
  c.v.textContent = formatVolume(t.v);
  // a halted symbol (trading status from its provider) is greyed out
  row.tr.classList.toggle('halted', t.status === 'halted');
  row.tr.title = t.status === 'halted' ? `${sym}: trading halted` : '';
}

// ---- chart -------------------------------------------------------------------------------

/** Older closed bars for scrolling back: GET /v1/bars (entitlements and delay as on the stream). */
async function loadOlder(before: number, limit: number): Promise<Bar[]> {
  const q = new URLSearchParams({ symbol: selected, interval, to: String(before), limit: String(limit) });
  const res = await fetch(`${httpBase}/v1/bars?${q.toString()}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  if (!res.ok) {
    log(`chart history: ${res.status} ${(await res.text()).slice(0, 200)}`);
    throw new Error(`GET /v1/bars: ${res.status}`);
  }
  return ((await res.json()) as { bars: Bar[] }).bars;
}

const chart = new BarChart($<HTMLCanvasElement>('chart'), { visible: 90, loadOlder });
const barChannel = (sym: string, iv = interval): string => `bar.${iv}:${sym}`;

function subscribeChart(): void {
  void client.subscribe([barChannel(selected)], { throttle, history: CHART_HISTORY }).catch((err: unknown) => log(`chart: ${String(err)}`));
}

function selectSymbol(sym: string): void {
  if (sym === selected && chart.size > 0) return;
  const previous = selected;
  selected = sym;
  rows.get(previous)?.tr.classList.remove('selected');
  rows.get(sym)?.tr.classList.add('selected');
  $('chart-symbol').textContent = sym;
  chart.reset(sym, INTERVALS[interval]);
  if (previous !== sym) void client.unsubscribe([barChannel(previous)]).catch(() => undefined);
  subscribeChart();
}

function selectInterval(next: string): void {
  if (next === interval || !(next in INTERVALS)) return;
  const previous = barChannel(selected);
  interval = next;
  $('chart-interval-label').textContent = next;
  chart.reset(selected, INTERVALS[next]);
  void client.unsubscribe([previous]).catch(() => undefined);
  subscribeChart();
}

// ---- portfolio and executions --------------------------------------------------------------

function onPortfolio(pf: Portfolio): void {
  $('pf-value').textContent = formatMoney(pf.value, pf.ccy);
  const pnl = $('pf-pnl');
  pnl.textContent = formatMoney(pf.pnl, pf.ccy);
  pnl.className = signClass(pf.pnl);
  const day = $('pf-day-pnl');
  day.textContent = formatMoney(pf.day_pnl, pf.ccy);
  day.className = signClass(pf.day_pnl);
  const body = $<HTMLTableSectionElement>('positions-body');
  body.replaceChildren();
  for (const p of pf.positions ?? []) {
    const tr = body.insertRow();
    tr.dataset.testid = `position-${p.sym}`;
    const cells = [p.sym, String(p.qty), formatPrice(p.sym, p.p), formatMoney(p.value, p.ccy), formatMoney(p.pnl, p.ccy)];
    for (const text of cells) tr.insertCell().textContent = text;
    tr.cells[4]!.className = signClass(p.pnl);
  }
}

function onExecution(u: Update<Execution>): void {
  const e = u.d;
  const list = $('executions-list');
  const li = document.createElement('li');
  li.dataset.testid = 'execution';
  li.dataset.seq = String(u.seq ?? '');
  const time = new Date(e.t).toLocaleTimeString();
  li.textContent = `${time}  ${e.side.toUpperCase()} ${e.qty} ${e.sym} @ ${formatPrice(e.sym, e.p)}  (order ${e.order})`;
  li.className = e.side === 'buy' ? 'pos' : 'neg';
  list.prepend(li);
  while (list.children.length > 50) list.lastElementChild?.remove();
}

// ---- event log and status ------------------------------------------------------------------

function log(text: string): void {
  const list = $('log');
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  list.prepend(li);
  while (list.children.length > 40) list.lastElementChild?.remove();
}

const marketChannels = (): string[] => [...symbols.map((s) => `ticker:${s}`), barChannel(selected)];

// ---- wiring ------------------------------------------------------------------------------

const client = new TickwireClient({
  url: wsUrl,
  ...(token !== undefined ? { token } : {}),
  encoding: params.get('encoding') === 'json' ? 'json' : 'msgpack',
  heartbeatIntervalMs: 5000,
  heartbeatTimeoutMs: 5000,
  reconnect: { initialDelayMs: 250, maxDelayMs: 4000 },
});

client.on('data', (u) => {
  stats.total++;
  stats.perChannel[u.channel] = (stats.perChannel[u.channel] ?? 0) + 1;
  stats.recent.push(performance.now());
});
client.on('ticker', onTicker);
client.on('bar', (u) => {
  if (u.channel !== barChannel(selected)) return;
  // the snapshot of a `history` subscribe (also after a reconnect or a gap) brings the closed bars before it
  if (u.history) chart.load(u.history);
  chart.push(u.d);
});
client.on('portfolio', (u) => onPortfolio(u.d));
client.on('execution', onExecution);
client.on('state', ({ state }) => {
  const el = byTestId('conn-state');
  el.textContent = state;
  el.dataset.state = state;
  if (state === 'open') log(`connected to ${wsUrl}`);
});
client.on('latency', ({ rttMs }) => {
  byTestId('latency').textContent = `${rttMs.toFixed(0)} ms`;
});
client.on('close', ({ code, reason, willReconnect }) => {
  log(`connection closed (${code}${reason ? ' ' + reason : ''})${willReconnect ? ', reconnecting' : ''}`);
});
client.on('reconnecting', ({ attempt, delayMs }) => {
  stats.reconnects++;
  log(`reconnect attempt ${attempt} in ${delayMs} ms`);
});
client.on('gap', (g) => {
  stats.gaps++;
  log(`gap on ${g.channel}: missed ${g.missed}, refreshing`);
});
client.on('rejected', (r) => log(`rejected ${r.channel}: ${r.code} ${r.reason}`));
client.on('error', (e) => {
  // while reconnecting every failed attempt reports a transport error: the close line says enough
  if (e.code === 'TRANSPORT' && client.state !== 'open') return;
  log(`${e.code}: ${e.message}`);
});

const throttleSelect = $<HTMLSelectElement>('throttle');
throttleSelect.value = String(throttle);
throttleSelect.addEventListener('change', () => {
  const next = Number(throttleSelect.value);
  if (next === throttle) return;
  throttle = next;
  log(`throttle ${next} ms`);
  stats.recent = [];
  void client.setThrottle(marketChannels(), next).catch((err: unknown) => log(`throttle: ${String(err)}`));
});

setInterval(() => {
  const now = performance.now();
  stats.recent = stats.recent.filter((t) => now - t <= 1000);
  byTestId('update-rate').textContent = String(stats.recent.length);
  byTestId('update-count').textContent = String(stats.total);
}, 250);

buildBoard();
rows.get(selected)?.tr.classList.add('selected');
$('chart-symbol').textContent = selected;
$('chart-interval-label').textContent = interval;
const intervalSelect = $<HTMLSelectElement>('chart-interval');
intervalSelect.value = interval;
intervalSelect.addEventListener('change', () => selectInterval(intervalSelect.value));
chart.reset(selected, INTERVALS[interval]);

void client.subscribe(symbols.map((s) => `ticker:${s}`), { throttle }).catch((err: unknown) => log(`subscribe: ${String(err)}`));
subscribeChart();
if (token) {
  $('portfolio-panel').hidden = false;
  $('executions-panel').hidden = false;
  void client.subscribe(['portfolio'], { throttle }).catch((err: unknown) => log(`portfolio: ${String(err)}`));
  void client.subscribe(['executions']).catch((err: unknown) => log(`executions: ${String(err)}`));
  const ops = new OpsSocket(wsUrl, token);
  mountNotifications({ parent: document.querySelector('main')!, client, ops, log });
  mountAlerts({ parent: document.querySelector('main')!, board: byTestId('board'), ops, log });
}
void client.connect().catch((err: unknown) => log(`connect: ${String(err)}`));

declare global {
  interface Window {
    tickwire: { client: TickwireClient; stats: typeof stats; throttle(): number; selected(): string; chart(): ChartView; interval(): string };
  }
}
window.tickwire = { client, stats, throttle: () => throttle, selected: () => selected, chart: () => chart.view(), interval: () => interval };
