import { LocalBook } from '../src/protocol/book.js';
import { formatPrice } from './format.js';

/**
 * The depth ladder: the selected crypto symbol's order book (`book:SYM`), asks above bids, with a
 * bar per level sized by its share of the largest level shown. Items go through LocalBook, which
 * checks `seq` and the checksum `cs`; on a mismatch the ladder asks for a fresh snapshot
 * (`resubscribe`). Symbols without a book source show "no book".
 */
export class DepthLadder {
  readonly #el: HTMLElement;
  readonly #resubscribe: (channel: string) => void;
  #book = new LocalBook();
  #channel: string | undefined;
  #dirty = false;
  /** items applied, and resyncs after a bad checksum or gap (for tests) */
  readonly stats = { items: 0, resyncs: 0 };

  constructor(el: HTMLElement, resubscribe: (channel: string) => void) {
    this.#el = el;
    this.#resubscribe = resubscribe;
    setInterval(() => this.#render(), 100);
  }

  get channel(): string | undefined {
    return this.#channel;
  }

  /** Show another symbol's book (undefined: none). */
  show(channel: string | undefined): void {
    this.#channel = channel;
    this.#book = new LocalBook();
    this.#dirty = true;
  }

  /** One `book:SYM` item from the client. */
  onItem(u: { channel: string; seq: number | undefined; snapshot: boolean; d: unknown }): void {
    if (u.channel !== this.#channel || u.seq === undefined) return;
    this.stats.items++;
    if (!this.#book.apply({ seq: u.seq, d: u.d, snapshot: u.snapshot })) {
      this.stats.resyncs++;
      this.#book.reset();
      this.#resubscribe(u.channel);
    }
    this.#dirty = true;
  }

  /** The book as shown: the checksum the client computed, and the levels (tests read these). */
  snapshot(): { checksum: number; bids: [number, number][]; asks: [number, number][] } {
    return { checksum: this.#book.checksum(), bids: this.#book.bids(), asks: this.#book.asks() };
  }

  #render(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const rows = 10;
    const asks = this.#book.asks().slice(0, rows).reverse();
    const bids = this.#book.bids().slice(0, rows);
    const max = Math.max(1e-12, ...asks.map((l) => l[1]), ...bids.map((l) => l[1]));
    const sym = this.#channel?.slice(this.#channel.indexOf(':') + 1) ?? '';
    const body = document.createElement('tbody');
    const row = (side: 'ask' | 'bid', [p, s]: [number, number]): void => {
      const tr = body.insertRow();
      tr.className = side;
      tr.dataset.testid = `book-${side}`;
      tr.dataset.price = String(p);
      const size = tr.insertCell();
      size.textContent = String(s);
      const price = tr.insertCell();
      price.textContent = formatPrice(sym, p);
      const bar = tr.insertCell();
      const fill = document.createElement('span');
      fill.className = 'depth';
      fill.style.width = `${Math.round((s / max) * 100)}%`;
      bar.append(fill);
    };
    for (const l of asks) row('ask', l);
    if (asks.length && bids.length) {
      const tr = body.insertRow();
      tr.className = 'spread';
      const c = tr.insertCell();
      c.colSpan = 3;
      c.textContent = `spread ${(asks[asks.length - 1]![0] - bids[0]![0]).toPrecision(4)}`;
    }
    for (const l of bids) row('bid', l);
    if (!asks.length && !bids.length) {
      const c = body.insertRow().insertCell();
      c.colSpan = 3;
      c.textContent = this.#channel ? 'waiting for the book…' : 'no book for this symbol';
    }
    this.#el.querySelector('tbody')?.replaceWith(body);
  }
}
