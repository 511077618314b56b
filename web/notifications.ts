import type { TickwireClient, Update } from '../src/client/index.js';
import { describeError, type Ops } from './alerts.js';

/**
 * Dashboard: the `notifications` channel. A panel lists notifications with an unread count and
 * "Mark all read" (`notifications.read` up to the newest seq), read markers from the user's other
 * connections apply at once, and a toast shows each new alert firing.
 */

interface Item {
  kind: 'notification' | 'read';
  id: string;
  type?: string;
  title?: string;
  body?: string;
  priority?: string;
  t: number;
  upTo?: number;
  ids?: string[];
  read?: boolean;
}

export function mountNotifications(opts: { parent: HTMLElement; client: TickwireClient; ops: Ops; log: (text: string) => void }): { unread(): number } {
  const panel = document.createElement('section');
  panel.className = 'panel notifications-panel';
  panel.dataset.testid = 'notifications';
  panel.innerHTML = '<h2>Notifications <span class="badge" data-testid="unread-count">0</span></h2>';
  const markAll = document.createElement('button');
  markAll.textContent = 'Mark all read';
  markAll.dataset.testid = 'mark-all-read';
  const list = document.createElement('ol');
  list.className = 'notifications';
  list.dataset.testid = 'notifications-list';
  panel.append(markAll, list);
  opts.parent.append(panel);
  const toasts = document.createElement('div');
  toasts.className = 'toasts';
  toasts.dataset.testid = 'toasts';
  document.body.append(toasts);

  const bySeq = new Map<number, Item>();
  let readUpTo = 0;
  const readIds = new Set<string>();
  // Toasts are for alerts that fire while the page is open: a notification stamped (server
  // clock) at or after the first welcome's server_time. Replays of older ones, on the first
  // subscribe or after a reconnect, only fill the list. The server's own clock on both sides, so
  // the browser's clock does not matter, and no timer guesses when the replay is over.
  let liveFrom = Infinity;
  opts.client.on('welcome', (w: { server_time: number }) => {
    if (liveFrom === Infinity) liveFrom = w.server_time;
  });
  const isRead = (seq: number, n: Item): boolean => n.read === true || seq <= readUpTo || readIds.has(n.id);

  const render = (): void => {
    let unread = 0;
    list.replaceChildren();
    const seqs = [...bySeq.keys()].sort((a, b) => b - a);
    for (const seq of seqs) {
      const n = bySeq.get(seq)!;
      if (n.kind !== 'notification') continue;
      const read = isRead(seq, n);
      if (!read) unread++;
      const li = document.createElement('li');
      li.dataset.testid = 'notification';
      li.dataset.seq = String(seq);
      li.dataset.read = String(read);
      li.className = read ? 'read' : `unread prio-${n.priority ?? 'normal'}`;
      li.textContent = `${new Date(n.t).toLocaleTimeString()}  ${n.title ?? ''}${n.body ? ' — ' + n.body : ''}`;
      list.append(li);
    }
    panel.querySelector<HTMLElement>('[data-testid="unread-count"]')!.textContent = String(unread);
    unreadNow = unread;
  };
  let unreadNow = 0;

  const toast = (n: Item): void => {
    const div = document.createElement('div');
    div.className = 'toast';
    div.dataset.testid = 'toast';
    div.textContent = `Alert: ${n.title ?? ''}${n.body ? ': ' + n.body : ''}`;
    toasts.append(div);
    setTimeout(() => div.remove(), 8000);
  };

  opts.client.on('data', (u: Update) => {
    if (u.channel !== 'notifications' || typeof u.seq !== 'number') return;
    const n = u.d as Item;
    if (bySeq.has(u.seq)) return; // the SDK re-subscribes after a reconnect: items may come again
    bySeq.set(u.seq, n);
    if (n.kind === 'read') {
      if (n.upTo !== undefined && n.upTo > readUpTo) readUpTo = n.upTo;
      for (const id of n.ids ?? []) readIds.add(id);
    } else if (n.type === 'alert' && n.t >= liveFrom && !isRead(u.seq, n)) {
      toast(n);
    }
    render();
  });
  void opts.client.subscribe(['notifications']).catch((err: unknown) => opts.log(`notifications: ${String(err)}`));

  markAll.addEventListener('click', () => {
    const top = Math.max(0, ...bySeq.keys());
    if (top === 0) return;
    opts.ops.request('notifications.read', { upTo: top }).catch((err: Error) => opts.log(`mark read: ${describeError(err)}`));
  });
  return { unread: () => unreadNow };
}
