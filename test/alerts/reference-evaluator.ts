import type { AlertRule } from '../../src/alerts/rule.js';
import { midOf, percentOf, priceDiff } from '../../src/core/numbers.js';
import type { QuoteTick, TradeTick } from '../../src/core/schema.js';

/**
 * A deliberately naive evaluator of the documented semantics (docs/alerts.md), one rule at a
 * time with no index: every tick visits every rule. The property tests check that the indexed
 * AlertEngine fires exactly what this fires.
 */
interface RefRule {
  rule: AlertRule;
  phase: 'fresh' | 'armed' | 'waiting' | 'done';
  prev: number | undefined;
  fired: number;
  lastFiredAt: number | undefined;
  /** held for its user's entitlements: not evaluated */
  held?: boolean;
}

export interface RefFiring {
  id: string;
  value: number;
  previous: number;
}

export class ReferenceEvaluator {
  readonly rules = new Map<string, RefRule>();
  /** tick history per (symbol, source, window) since the first rule of that window was added */
  readonly history = new Map<string, { t: number; p: number }[]>();

  add(rule: AlertRule): void {
    this.rules.set(rule.id, { rule, phase: 'fresh', prev: undefined, fired: 0, lastFiredAt: undefined });
    if (rule.kind === 'change') {
      const k = `${rule.symbol}|${rule.source}|${rule.windowMs}`;
      if (!this.history.has(k)) this.history.set(k, []);
    }
  }

  remove(id: string): void {
    this.rules.delete(id);
  }

  /** Held: skipped by every tick until released. */
  hold(id: string): void {
    const r = this.rules.get(id);
    if (r) r.held = true;
  }

  /** Released: starts fresh (its next value only arms it), unless it is done. */
  release(id: string): void {
    const r = this.rules.get(id);
    if (!r?.held) return;
    r.held = false;
    if (r.phase === 'done') return;
    r.phase = 'fresh';
    // a percent-change window lives while a rule evaluates on it: with none left (held, done or
    // removed) it was dropped, and a released rule starts a new one, as a new rule would
    const rule = r.rule;
    if (rule.kind !== 'change') return;
    const k = `${rule.symbol}|${rule.source}|${rule.windowMs}`;
    const alive = [...this.rules.values()].some(
      (o) => o !== r && !o.held && o.phase !== 'done' && o.rule.kind === 'change' && `${o.rule.symbol}|${o.rule.source}|${o.rule.windowMs}` === k,
    );
    if (!alive) this.history.set(k, []);
  }

  onTick(tick: TradeTick | QuoteTick, now: number): RefFiring[] {
    for (const [id, r] of this.rules) if (r.rule.expiresAt !== undefined && r.rule.expiresAt <= now) this.rules.delete(id);
    const out: RefFiring[] = [];
    let trade: number | undefined;
    let mid: number | undefined;
    let spread: number | undefined;
    if (tick.k === 'trade') trade = tick.p;
    else if (tick.bp !== undefined && tick.ap !== undefined) {
      // values as quoted (docs/alerts.md, Floating point; the functions' own property test checks
      // them against exact decimals)
      mid = midOf(tick.bp, tick.ap);
      spread = priceDiff(tick.ap, tick.bp);
    }
    for (const [k, h] of this.history) {
      const [sym, source, w] = k.split('|') as [string, string, string];
      const p = source === 'trade' ? trade : mid;
      if (sym === tick.sym && p !== undefined) h.push({ t: now, p });
      while (h.length > 0 && h[0]!.t <= now - Number(w)) h.shift();
    }
    for (const r of this.rules.values()) {
      const rule = r.rule;
      if (rule.symbol !== tick.sym || r.phase === 'done' || r.held) continue;
      let v: number | undefined;
      let up = true;
      let level: number;
      if (rule.kind === 'price') {
        v = rule.source === 'trade' ? trade : mid;
        up = rule.direction === 'above';
        level = rule.level;
      } else if (rule.kind === 'spread') {
        v = spread;
        level = rule.threshold;
      } else {
        const p = rule.source === 'trade' ? trade : mid;
        level = rule.percent;
        if (p !== undefined) {
          const h = this.history.get(`${rule.symbol}|${rule.source}|${rule.windowMs}`)!;
          const min = Math.min(...h.map((e) => e.p));
          const max = Math.max(...h.map((e) => e.p));
          v = rule.direction === 'up' ? percentOf(priceDiff(p, min), min) : percentOf(priceDiff(max, p), max);
        }
      }
      if (v === undefined) continue;
      const prev = r.prev;
      r.prev = v;
      if (r.phase === 'fresh') {
        r.phase = 'armed';
        continue;
      }
      const h = rule.rearmBy ?? 0;
      if (r.phase === 'waiting') {
        if (up ? v <= level - h : v >= level + h) r.phase = 'armed';
        continue;
      }
      const crossed = up ? prev! < level && v >= level : prev! > level && v <= level;
      if (!crossed) continue;
      if (r.lastFiredAt !== undefined && now - r.lastFiredAt < rule.cooldownMs) {
        r.phase = 'waiting';
        continue;
      }
      r.fired++;
      r.lastFiredAt = now;
      out.push({ id: `${rule.id}:${r.fired}`, value: v, previous: prev! });
      r.phase = rule.mode === 'once' ? 'done' : 'waiting';
    }
    return out;
  }
}
