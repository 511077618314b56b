/**
 * Dashboard: price alerts from a board row. Click a row, the form takes its symbol and last
 * price; "Create alert" sends `alert.create` (above when the level is over the last price, below
 * otherwise). The user's rules are listed with a delete button. Alert ops and read marks are the
 * in-band ops of docs/protocol.md, sent by the dashboard's own client (TickwireClient.request).
 */

/** What the panels need of the client: its in-band extension ops (`TickwireClient.request`). */
export interface Ops {
  request(op: string, fields?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** A refusal as shown in the panel: the server's code and message. */
export function describeError(err: Error & { code?: string }): string {
  return err.code ? `${err.code}: ${err.message}` : err.message;
}

interface AlertView {
  id: string;
  symbol: string;
  kind: string;
  direction?: string;
  level?: number;
  delayed: boolean;
  state: { phase: string; fired: number };
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/** Mount the alerts panel into `parent`; rows of `board` (tr.row with data-symbol, data-price) prefill it. */
export function mountAlerts(opts: { parent: HTMLElement; board: HTMLElement; ops: Ops; log: (text: string) => void }): void {
  const panel = el('section', { class: 'panel alerts-panel', 'data-testid': 'alerts' });
  panel.append(el('h2', {}, 'Alerts'));
  const form = el('form', { class: 'alert-form', 'data-testid': 'alert-form' });
  const symbol = el('input', { name: 'symbol', 'data-testid': 'alert-symbol', placeholder: 'symbol', size: '9', required: '' });
  const level = el('input', { name: 'level', 'data-testid': 'alert-level', placeholder: 'level', type: 'number', step: 'any', size: '9', required: '' });
  const submit = el('button', { type: 'submit', 'data-testid': 'alert-create' }, 'Create alert');
  form.append(symbol, level, submit);
  const status = el('p', { class: 'hint', 'data-testid': 'alert-status' });
  const list = el('ul', { class: 'alerts', 'data-testid': 'alerts-list' });
  panel.append(form, status, list);
  opts.parent.append(panel);

  const render = (alerts: AlertView[]): void => {
    list.replaceChildren();
    for (const a of alerts) {
      const li = el('li', { 'data-testid': `alert-${a.id}`, 'data-phase': a.state.phase });
      const what = a.kind === 'price' ? `${a.symbol} ${a.direction} ${a.level}` : `${a.symbol} ${a.kind}`;
      li.append(el('span', {}, `${what}  ·  ${a.state.phase}${a.state.fired ? ` (${a.state.fired}×)` : ''}${a.delayed ? '  · delayed' : ''}`));
      const del = el('button', { type: 'button', 'data-testid': `alert-delete-${a.id}` }, '✕');
      del.addEventListener('click', () => {
        opts.ops.request('alert.delete', { rule: a.id }).then(refresh, (err: Error) => (status.textContent = describeError(err)));
      });
      li.append(del);
      list.append(li);
    }
  };
  // one list in flight at a time: while the connection is down the client queues requests until
  // it is back, and a list every 5 s would arrive as a burst (hundreds after an hour); asked again
  // meanwhile (the timer, a rule created or deleted), one more list follows
  let listing = false;
  let again = false;
  const refresh = (): void => {
    if (listing) {
      again = true;
      return;
    }
    listing = true;
    again = false;
    opts.ops
      .request('alert.list')
      .then(
        (f) => render((f.alerts as AlertView[]) ?? []),
        (err: Error) => opts.log(`alerts: ${describeError(err)}`),
      )
      .finally(() => {
        listing = false;
        if (again) refresh();
      });
  };

  // a row click prefills the form with the row's symbol and last price
  opts.board.addEventListener('click', (e) => {
    const tr = (e.target as HTMLElement).closest<HTMLElement>('tr.row');
    if (!tr?.dataset.symbol) return;
    symbol.value = tr.dataset.symbol;
    if (tr.dataset.price) level.value = tr.dataset.price;
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const sym = symbol.value.trim().toUpperCase();
    const lvl = Number(level.value);
    const row = opts.board.querySelector<HTMLElement>(`tr.row[data-symbol="${CSS.escape(sym)}"]`);
    const last = Number(row?.dataset.price);
    const direction = Number.isFinite(last) && lvl < last ? 'below' : 'above';
    const id = `${sym.replace(/[^A-Za-z0-9]/g, '-')}-${direction}-${Date.now().toString(36)}`;
    opts.ops.request('alert.create', { rule: { id, symbol: sym, kind: 'price', direction, level: lvl } }).then(
      () => {
        status.textContent = `alert: ${sym} ${direction} ${lvl}`;
        refresh();
      },
      (err: Error) => (status.textContent = describeError(err)),
    );
  });
  refresh();
  // state (armed, done, fired count) changes as prices move
  setInterval(refresh, 5000);
}
