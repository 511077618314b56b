import { TickwireClient } from '../../src/client/index.js';

/**
 * The operator's console (served at /admin). It polls the admin API (/admin/api/overview) with the
 * service token the operator types in (kept in sessionStorage for this tab only), and watches the
 * `system` channel through the same client SDK as the dashboard, so that a posted announcement is
 * seen arriving as clients see it. It streams from the gateway that served it and from no other:
 * a link such as /admin?ws=wss://elsewhere cannot feed an operator a forged `system` channel
 * (the page's CSP, connect-src 'self', says the same; docs/operations.md#browser-security).
 */
interface ConnectionRow {
  id: string;
  user: string | null;
  ip: string;
  encoding: string;
  /** the first channels (at most 20), sorted */
  subscriptions: string[];
  subscriptionCount: number;
  bufferedBytes: number;
  slow: boolean;
  openedAt: number;
}
interface ConnectionTotals {
  connections: number;
  slow: number;
  bufferedBytes: number;
}
interface Overview {
  at: number;
  /** at most 100: slow first, then the most buffered, then the newest */
  connections: ConnectionRow[];
  /** exact, over every connection */
  connectionTotals: ConnectionTotals;
  /** at most 100: the most subscribers first */
  channels: { channel: string; subscribers: number; tiers: Record<string, number>; updatesPerSec: number }[];
  /** exact, over every channel */
  channelTotals: { channels: number; subscribers: number };
  feeds: { id: string; state: string; lagMs?: number; reporting: boolean; detail?: string }[];
}

const POLL_MS = 1000;
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream`;

const byTestId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.querySelector<T>(`[data-testid="${id}"]`);
  if (!el) throw new Error(`[data-testid=${id}] missing from admin.html`);
  return el;
};

const cell = (text: string | number): HTMLTableCellElement => {
  const td = document.createElement('td');
  td.textContent = String(text);
  return td;
};

/** the listed channels, and how many more the connection holds (the API lists the first 20) */
const subscriptionsText = (names: string[], count: number): string =>
  names.length === 0 ? '–' : names.join(' ') + (count > names.length ? ` … (${count} in all)` : '');
const bytes = (n: number): string => (n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`);
const ago = (ms: number): string => (ms < 60_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`);

let token = sessionStorage.getItem('tickwire.admin.token') ?? '';
let timer: ReturnType<typeof setTimeout> | undefined;
/**
 * Whether the token may act (scope admin:write): without it the page shows no close buttons and
 * no announcement form. The gateway refuses such requests anyway (403); this keeps the page from
 * offering what the token cannot do. Learned from GET /admin/api/session at sign-in.
 */
let canWrite = false;

/** Ask the gateway what the token may do, and show the actions it allows. */
async function learnScopes(): Promise<void> {
  canWrite = false;
  try {
    const res = await api('GET', '/admin/api/session');
    // a gateway without /session (older): offer everything, the API still decides
    canWrite = res.status === 404 || (res.ok && ((await res.json()) as { scopes: string[] }).scopes.includes('admin:write'));
  } catch {
    canWrite = false;
  }
  byTestId('announce').hidden = !canWrite;
  byTestId('read-only').hidden = canWrite;
}

function setState(state: 'idle' | 'ok' | 'refused' | 'error', text?: string): void {
  const el = byTestId('api-state');
  el.dataset.state = state;
  el.textContent = text ?? state;
}

async function api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
  return fetch(path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

function connectionRow(c: ConnectionRow, at: number): HTMLTableRowElement {
  const tr = document.createElement('tr');
  tr.dataset.testid = 'connection';
  tr.dataset.conn = c.id;
  if (c.slow) tr.className = 'slow';
  tr.append(
    cell(c.id),
    cell(c.user ?? '(anonymous)'),
    cell(c.ip),
    cell(c.encoding),
    cell(subscriptionsText(c.subscriptions, c.subscriptionCount)),
    cell(bytes(c.bufferedBytes)),
    cell(c.slow ? 'slow' : ''),
    cell(ago(at - c.openedAt)),
  );
  const td = document.createElement('td');
  if (canWrite) {
    const btn = document.createElement('button');
    btn.textContent = 'close';
    btn.dataset.testid = `close-${c.id}`;
    btn.addEventListener('click', () => void closeConnection(c.id));
    td.append(btn);
  }
  tr.append(td);
  return tr;
}

/**
 * A search (or "all, oldest first") in place of the overview's first connections: its rows stay
 * until the operator searches again, asks for more or goes back to the overview. Undefined: the
 * table shows the overview's rows, refreshed at each poll.
 */
let listing: { user: string; ip: string; next: string | null } | undefined;

function showTotals(t: ConnectionTotals): void {
  byTestId('connection-count').textContent = String(t.connections);
  byTestId('connection-slow').textContent = String(t.slow);
  byTestId('connection-buffered').textContent = bytes(t.bufferedBytes);
}

function render(o: Overview): void {
  showTotals(o.connectionTotals);
  if (!listing) {
    byTestId('connections').replaceChildren(...o.connections.map((c) => connectionRow(c, o.at)));
    byTestId('connection-shown').textContent =
      o.connections.length < o.connectionTotals.connections
        ? `the ${o.connections.length} that need attention first (slow, then most buffered, then newest); search above to find or list the others`
        : 'all of them';
    byTestId('connection-more').hidden = true;
  }
  byTestId('channels').replaceChildren(
    ...o.channels.map((c) => {
      const tr = document.createElement('tr');
      tr.dataset.testid = 'channel';
      tr.dataset.channel = c.channel;
      tr.dataset.subscribers = String(c.subscribers);
      tr.append(
        cell(c.channel),
        cell(c.subscribers),
        cell(
          Object.entries(c.tiers)
            .map(([t, n]) => `${t}: ${n}`)
            .join(', '),
        ),
        cell(c.updatesPerSec),
      );
      return tr;
    }),
  );
  byTestId('channel-count').textContent =
    o.channels.length < o.channelTotals.channels ? `${o.channelTotals.channels}; the ${o.channels.length} busiest shown` : String(o.channelTotals.channels);
  byTestId('feeds').replaceChildren(
    ...o.feeds.map((f) => {
      const tr = document.createElement('tr');
      tr.dataset.testid = 'feed';
      tr.dataset.feed = f.id;
      tr.dataset.state = f.state;
      tr.append(
        cell(f.id),
        cell(f.state),
        cell(f.lagMs === undefined ? '–' : `${Math.round(f.lagMs)} ms`),
        cell(f.reporting ? 'yes' : 'no'),
        cell(f.detail ?? ''),
      );
      return tr;
    }),
  );
  byTestId('updated-at').textContent = new Date(o.at).toLocaleTimeString();
}

async function poll(): Promise<void> {
  if (timer) clearTimeout(timer);
  if (!token) return;
  try {
    const res = await api('GET', '/admin/api/overview');
    if (res.status === 401 || res.status === 403) {
      const body = (await res.json()) as { message?: string };
      setState('refused', String(res.status));
      byTestId('login-error').textContent = body.message ?? `refused (${res.status})`;
      return; // no retry with a token that was refused
    }
    if (!res.ok) throw new Error(`${res.status}`);
    byTestId('login-error').textContent = '';
    render((await res.json()) as Overview);
    setState('ok');
  } catch (err) {
    setState('error', `error: ${String(err)}`);
  }
  timer = setTimeout(() => void poll(), POLL_MS);
}

async function closeConnection(id: string): Promise<void> {
  const res = await api('POST', `/admin/api/connections/${encodeURIComponent(id)}/close`);
  if (!res.ok) setState('error', `close ${id}: ${res.status}`);
  else document.querySelector(`tr[data-conn="${CSS.escape(id)}"]`)?.remove();
  void poll();
}

/** One page of GET /admin/api/connections for the current search, appended to the table (or replacing it: the first page). */
async function listPage(first: boolean): Promise<void> {
  if (!listing) return;
  const q = new URLSearchParams();
  if (listing.user) q.set('user', listing.user);
  if (listing.ip) q.set('ip', listing.ip);
  if (!first && listing.next) q.set('after', listing.next);
  const res = await api('GET', `/admin/api/connections?${q.toString()}`);
  const out = byTestId('connection-shown');
  if (!res.ok) {
    out.textContent = `search refused: ${((await res.json()) as { message?: string }).message ?? res.status}`;
    return;
  }
  const page = (await res.json()) as { at: number; connections: ConnectionRow[]; matched: number; totals: ConnectionTotals; next: string | null };
  showTotals(page.totals);
  const rows = page.connections.map((c) => connectionRow(c, page.at));
  if (first) byTestId('connections').replaceChildren(...rows);
  else byTestId('connections').append(...rows);
  listing.next = page.next;
  const shown = byTestId('connections').childElementCount;
  const what = [listing.user && `user "${listing.user}"`, listing.ip && `IP ${listing.ip}`].filter(Boolean).join(' and ');
  out.textContent = `${shown} of the ${page.matched} ${what ? `of ${what}` : 'open'}, oldest first`;
  byTestId('connection-more').hidden = page.next === null;
}

byTestId<HTMLFormElement>('connection-search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  listing = { user: byTestId<HTMLInputElement>('search-user').value.trim(), ip: byTestId<HTMLInputElement>('search-ip').value.trim(), next: null };
  void listPage(true);
});
byTestId('connection-more').addEventListener('click', () => void listPage(false));
byTestId('connection-overview').addEventListener('click', () => {
  listing = undefined;
  void poll();
});

byTestId<HTMLFormElement>('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = byTestId<HTMLInputElement>('token').value.trim();
  sessionStorage.setItem('tickwire.admin.token', token);
  void learnScopes().then(poll);
});

byTestId<HTMLFormElement>('announce').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const body = {
    level: byTestId<HTMLSelectElement>('announce-level').value,
    title: byTestId<HTMLInputElement>('announce-title').value,
    message: byTestId<HTMLInputElement>('announce-message').value,
  };
  void api('POST', '/admin/api/announcements', body).then(async (res) => {
    const out = byTestId('announce-result');
    out.dataset.status = String(res.status);
    out.textContent = res.ok ? 'posted' : `refused: ${((await res.json()) as { message?: string }).message ?? res.status}`;
  });
});

/** the system list keeps the newest this many announcements: a tab left open must not grow without bound */
const SYSTEM_FEED_MAX = 200;

// the system channel through the SDK, as every client gets it
const client = new TickwireClient({ url: wsUrl, encoding: 'json' });
client.on('system', (u) => {
  const li = document.createElement('li');
  li.dataset.testid = 'system-message';
  li.dataset.level = u.d.level;
  li.textContent = `${new Date(u.d.t).toLocaleTimeString()} [${u.d.level}] ${u.d.title}: ${u.d.message}`;
  const feed = byTestId('system-feed');
  feed.prepend(li);
  while (feed.childElementCount > SYSTEM_FEED_MAX) feed.lastElementChild!.remove();
});
void client.connect().then(() => client.subscribe(['system']));

declare global {
  interface Window {
    tickwireAdmin: { client: TickwireClient; poll: () => Promise<void> };
  }
}
window.tickwireAdmin = { client, poll };
if (token) {
  byTestId<HTMLInputElement>('token').value = token;
  void learnScopes().then(poll);
}
