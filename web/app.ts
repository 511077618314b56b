import { TickwireClient, type Bar, type Execution, type Portfolio, type SystemMessage, type Ticker, type Update } from '@tickwire/client';
import { BarChart, type ChartView } from './chart.js';
import { DepthLadder } from './book.js';
import { mountAlerts } from './alerts.js';
import { mountNotifications } from './notifications.js';
import { assetClassOf, formatMoney, formatPrice, formatSigned, formatVolume, priceDigits, signClass, type AssetClass } from './format.js';

/**
 * The tickwire dashboard. Page parameters:
 *   ?symbols=AAPL,BTC-USD   board symbols (default: a mix of stocks, crypto and forex)
 *   #token=JWT              enables the portfolio, executions, notifications and alerts panels
 *                           (?token=JWT too); taken out of the address bar at once, see takeToken
 *   ?throttle=250           initial throttle in ms (0, 100, 250, 1000)
 *   ?ws=ws://host/v1/stream gateway (default: the page's own host)
 *   ?encoding=json          wire encoding (default msgpack)
 *   ?interval=1m            chart bar interval: 1s (default), 1m, 5m, 1h, 1d
 *
 * Rows off screen ask the gateway for its slow tier, and a hidden tab pauses the board
 * (docs/protocol.md#visibility): the client follows document.visibilityState by itself.
 */
const DEFAULT_SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'BRK.B', 'BTC-USD', 'ETH-USD', 'SOL-USD', 'EUR-USD', 'GBP-USD', 'USD-JPY'];
/** suggestions for the symbol search (the built-in universe); the gateway decides what exists */
const SUGGESTED = [...DEFAULT_SYMBOLS, 'AMZN', 'GOOGL', 'META', 'SPY', 'QQQ', 'XRP-USD', 'DOGE-USD', 'USD-CHF', 'AUD-USD', 'USD-CAD'];
const THROTTLES = [0, 100, 250, 1000];

const params = new URLSearchParams(location.search);
const symbols = (params.get('symbols') ?? DEFAULT_SYMBOLS.join(','))
  .split(',')
  .map((s) => s.trim().toUpperCase())
  .filter(Boolean);

/**
 * The user's token, from the fragment (`#token=`, never sent to any server) or the query
 * (`?token=`). It is then taken out of the address bar (history.replaceState), so that it is not
 * kept in the history, shown on screen, copied with a shared link, or sent in a Referer; the
 * page's `Referrer-Policy: no-referrer` covers the requests made before this runs.
 */
function takeToken(): string | undefined {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const found = fragment.get('token') || params.get('token') || undefined;
  if (fragment.has('token') || params.has('token')) {
    fragment.delete('token');
    params.delete('token');
    const query = params.toString();
    const hash = fragment.toString();
    history.replaceState(history.state, '', `${location.pathname}${query ? `?${query}` : ''}${hash ? `#${hash}` : ''}`);
  }
  return found;
}
const token = takeToken();
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
const groupRows = new Map<AssetClass, HTMLTableRowElement>();
const tickerOf = (sym: string): string => `ticker:${sym}`;

/** Off-screen rows get the gateway's slow tier (op visibility); on screen again, a fresh snapshot. */
const onScreen =
  typeof IntersectionObserver === 'function'
    ? new IntersectionObserver((entries) => {
        const show: string[] = [];
        const hide: string[] = [];
        for (const e of entries) {
          const sym = (e.target as HTMLElement).dataset.symbol;
          if (sym && rows.has(sym)) (e.isIntersecting ? show : hide).push(tickerOf(sym));
        }
        if (show.length) void client.setVisible(show, true).catch(() => undefined);
        if (hide.length) void client.setVisible(hide, false).catch(() => undefined);
      })
    : undefined;

function buildBoard(): void {
  for (const sym of symbols) addRow(sym);
}

/** A row for a symbol, under its asset class's group heading (created on first use). */
function addRow(sym: string): void {
  if (rows.has(sym)) return;
  const body = $<HTMLTableSectionElement>('board-body');
  const cls = assetClassOf(sym);
  const titles: Record<AssetClass, string> = { stock: 'Stocks', crypto: 'Crypto', forex: 'Forex' };
  let g = groupRows.get(cls);
  if (!g) {
    // groups stay in stock, crypto, forex order
    const order: AssetClass[] = ['stock', 'crypto', 'forex'];
    const next = order
      .slice(order.indexOf(cls) + 1)
      .map((c) => groupRows.get(c))
      .find(Boolean);
    g = body.insertRow(next ? next.sectionRowIndex : -1);
    g.className = 'group';
    const c = g.insertCell();
    c.colSpan = 10;
    c.textContent = titles[cls];
    groupRows.set(cls, g);
  }
  // after the group's last row
  let at = g.sectionRowIndex + 1;
  while (at < body.rows.length && body.rows[at]!.className !== 'group') at++;
  const tr = body.insertRow(at);
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
  const cells = {
    p: cell('price'),
    chg: cell('chg'),
    chgp: cell('chgp'),
    bp: cell('bid'),
    ap: cell('ask'),
    h: cell('high'),
    l: cell('low'),
    v: cell('volume'),
  };
  const rm = tr.insertCell().appendChild(document.createElement('button'));
  rm.className = 'remove';
  rm.textContent = '×';
  rm.title = `remove ${sym}`;
  rm.dataset.testid = `remove-${sym}`;
  rm.addEventListener('click', (ev) => {
    ev.stopPropagation();
    removeSymbol(sym);
  });
  tr.addEventListener('click', () => selectSymbol(sym));
  rows.set(sym, { tr, cells, last: undefined });
  onScreen?.observe(tr);
}

function removeRow(sym: string): void {
  const row = rows.get(sym);
  if (!row) return;
  onScreen?.unobserve(row.tr);
  row.tr.remove();
  rows.delete(sym);
  const cls = assetClassOf(sym);
  if (![...rows.keys()].some((s) => assetClassOf(s) === cls)) {
    groupRows.get(cls)?.remove();
    groupRows.delete(cls);
  }
}

// ---- symbol search: add and remove ----------------------------------------------------------

function showSymbolError(text: string): void {
  const el = byTestId('symbol-error');
  el.textContent = text;
  el.hidden = text === '';
}

/** Subscribe first, add the row only when the gateway accepts: a rejection is shown by the input. */
async function addSymbol(raw: string): Promise<void> {
  const sym = raw.trim().toUpperCase();
  if (!sym) return;
  if (rows.has(sym)) {
    showSymbolError(`${sym} is already on the board`);
    return;
  }
  showSymbolError('');
  try {
    const ack = await client.subscribe([tickerOf(sym)], { throttle });
    const refused = ack.rejected.find((r) => r.channel === tickerOf(sym));
    if (refused) {
      showSymbolError(`${sym}: ${refused.reason} (${refused.code})`);
      return;
    }
    symbols.push(sym);
    addRow(sym);
    log(`added ${sym}`);
  } catch (err) {
    showSymbolError(`${sym}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function removeSymbol(sym: string): void {
  const i = symbols.indexOf(sym);
  if (i >= 0) symbols.splice(i, 1);
  removeRow(sym);
  void client.unsubscribe([tickerOf(sym)]).catch(() => undefined);
  log(`removed ${sym}`);
  if (sym === selected && symbols[0]) selectSymbol(symbols[0]);
}

function wireSearch(): void {
  const form = $<HTMLFormElement>('symbol-form');
  const input = $<HTMLInputElement>('symbol-input');
  const list = $<HTMLDataListElement>('symbol-suggestions');
  for (const s of SUGGESTED) list.appendChild(document.createElement('option')).value = s;
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = input.value;
    input.value = '';
    void addSymbol(value);
  });
  input.addEventListener('input', () => showSymbolError(''));
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
  if (t.empty) {
    // the day's priced trades were all cancelled (docs/protocol.md#ticker): p, o, h and l carry the
    // previous close (or 0), which is no last price, no change and no day range
    row.last = undefined;
    delete row.tr.dataset.price;
    row.tr.dataset.empty = 'true';
    c.p.textContent = '—';
    c.p.title = `no trade left today (cancelled)${t.pc !== undefined ? `; previous close ${formatPrice(sym, t.pc)}` : ''}`;
    c.chg.textContent = c.chgp.textContent = c.h.textContent = c.l.textContent = '–';
    c.chg.className = c.chgp.className = '';
  } else {
    if (row.last !== undefined && t.p !== row.last) flash(c.p, t.p > row.last ? 'up' : 'down');
    row.last = t.p;
    row.tr.dataset.price = String(t.p);
    delete row.tr.dataset.empty;
    c.p.textContent = formatPrice(sym, t.p);
    c.p.title = '';
    c.chg.textContent = formatSigned(t.chg, priceDigits(sym, t.p));
    c.chgp.textContent = formatSigned(t.chgp, 2, '%');
    c.chg.className = c.chgp.className = signClass(t.chg);
    c.h.textContent = formatPrice(sym, t.h);
    c.l.textContent = formatPrice(sym, t.l);
  }
  c.bp.textContent = formatPrice(sym, t.bp);
  c.ap.textContent = formatPrice(sym, t.ap);
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
  showBook(sym);
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

// ---- depth ladder (web/book.ts): the selected crypto symbol's order book --------------------

const BOOK_DEPTH = 10;
const ladder = new DepthLadder($('book-ladder'), (ch) => client.resync([ch]));
function showBook(sym: string): void {
  const ch = assetClassOf(sym) === 'crypto' ? `book:${sym}` : undefined;
  $('book-symbol').textContent = ch ? sym : `${sym} (no book)`;
  if (ladder.channel === ch) return;
  if (ladder.channel) void client.unsubscribe([ladder.channel]).catch(() => undefined);
  ladder.show(ch);
  if (ch) void client.subscribe([ch], { throttle, depth: BOOK_DEPTH }).catch((err: unknown) => log(`book: ${String(err)}`));
}

// ---- portfolio and executions --------------------------------------------------------------

function onPortfolio(pf: Portfolio): void {
  const value = $('pf-value');
  value.textContent = formatMoney(pf.value, pf.ccy);
  // the book lacks executions the log no longer holds (docs/private-streams.md#a-book-the-position-store-lost)
  if (pf.incomplete) value.textContent += ' (incomplete)';
  value.title = pf.incomplete ? `positions lack executions ${pf.incomplete.from} to ${pf.incomplete.to}: not your full positions` : '';
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
    // a line valued at a delayed price (the token gets the symbol delayed), or not priced at all
    if (p.delayed !== undefined) {
      tr.dataset.delayed = String(p.delayed);
      const ago = p.delayed >= 60_000 ? `${Math.round(p.delayed / 60_000)} min` : p.delayed >= 1000 ? `${Math.round(p.delayed / 1000)} s` : `${p.delayed} ms`;
      tr.title = `valued at the price of ${ago} ago (delayed data)`;
      tr.cells[2]!.textContent += ' (delayed)';
    } else if (p.priced === false) {
      tr.title = 'not priced: no price you may see yet (valued at cost, out of the totals)';
      tr.cells[2]!.textContent += ' (at cost)';
    }
  }
}

/** Time of day for today's executions; date and time for older ones (replayed history). */
function executionTime(t: number, now = new Date()): string {
  const d = new Date(t);
  const today = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
  return today ? d.toLocaleTimeString() : `${d.toLocaleDateString()} ${d.toLocaleTimeString()}`;
}

function onExecution(u: Update<Execution>): void {
  const e = u.d;
  const list = $('executions-list');
  const li = document.createElement('li');
  li.dataset.testid = 'execution';
  li.dataset.seq = String(u.seq ?? '');
  li.textContent = `${executionTime(e.t)}  ${e.side.toUpperCase()} ${e.qty} ${e.sym} @ ${formatPrice(e.sym, e.p)}  (order ${e.order})`;
  li.className = e.side === 'buy' ? 'pos' : 'neg';
  list.prepend(li);
  while (list.children.length > 50) list.lastElementChild?.remove();
}

// ---- system announcements ------------------------------------------------------------------

function onSystem(m: SystemMessage): void {
  const list = $('announcements');
  list.hidden = false;
  const li = document.createElement('li');
  li.dataset.testid = 'announcement';
  li.className = `announcement ${m.level}`;
  const title = li.appendChild(document.createElement('b'));
  title.textContent = m.title;
  li.append(` ${m.message} `);
  const when = li.appendChild(document.createElement('time'));
  when.textContent = new Date(m.t).toLocaleTimeString();
  const close = li.appendChild(document.createElement('button'));
  close.className = 'remove';
  close.textContent = '×';
  close.title = 'dismiss';
  close.addEventListener('click', () => {
    li.remove();
    if (list.children.length === 0) list.hidden = true;
  });
  list.prepend(li);
  while (list.children.length > 5) list.lastElementChild?.remove();
}

// ---- event log and status ------------------------------------------------------------------

function log(text: string): void {
  const list = $('log');
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  list.prepend(li);
  while (list.children.length > 40) list.lastElementChild?.remove();
}

const marketChannels = (): string[] => [...symbols.map(tickerOf), barChannel(selected)];

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
client.on('data', (u) => {
  if (u.kind === 'book') ladder.onItem(u);
});
client.on('bar', (u) => {
  if (u.channel !== barChannel(selected)) return;
  // the snapshot of a `history` subscribe (also after a reconnect or a gap) brings the closed bars before it
  if (u.history) chart.load(u.history);
  chart.push(u.d);
});
client.on('portfolio', (u) => onPortfolio(u.d));
client.on('execution', onExecution);
client.on('system', (u) => onSystem(u.d));
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
  // (the book on its own: setThrottle keeps the depth of the channels it is given)
  if (ladder.channel) void client.setThrottle([ladder.channel], next).catch((err: unknown) => log(`book throttle: ${String(err)}`));
});

setInterval(() => {
  const now = performance.now();
  stats.recent = stats.recent.filter((t) => now - t <= 1000);
  byTestId('update-rate').textContent = String(stats.recent.length);
  byTestId('update-count').textContent = String(stats.total);
}, 250);

buildBoard();
wireSearch();
rows.get(selected)?.tr.classList.add('selected');
$('chart-symbol').textContent = selected;
$('chart-interval-label').textContent = interval;
const intervalSelect = $<HTMLSelectElement>('chart-interval');
intervalSelect.value = interval;
intervalSelect.addEventListener('change', () => selectInterval(intervalSelect.value));
chart.reset(selected, INTERVALS[interval]);

void client.subscribe(symbols.map(tickerOf), { throttle }).catch((err: unknown) => log(`subscribe: ${String(err)}`));
subscribeChart();
showBook(selected);
void client.subscribe(['system']).catch((err: unknown) => log(`system: ${String(err)}`));
if (token) {
  $('portfolio-panel').hidden = false;
  $('executions-panel').hidden = false;
  void client.subscribe(['portfolio'], { throttle }).catch((err: unknown) => log(`portfolio: ${String(err)}`));
  void client.subscribe(['executions']).catch((err: unknown) => log(`executions: ${String(err)}`));
  mountNotifications({ parent: document.querySelector('main')!, client, ops: client, log });
  mountAlerts({ parent: document.querySelector('main')!, board: byTestId('board'), ops: client, log });
}
void client.connect().catch((err: unknown) => log(`connect: ${String(err)}`));

declare global {
  interface Window {
    tickwire: {
      client: TickwireClient;
      stats: typeof stats;
      throttle(): number;
      selected(): string;
      chart(): ChartView;
      interval(): string;
      symbols(): string[];
      ladder: DepthLadder;
    };
  }
}
window.tickwire = {
  client,
  stats,
  throttle: () => throttle,
  selected: () => selected,
  chart: () => chart.view(),
  ladder,
  interval: () => interval,
  symbols: () => [...symbols],
};
