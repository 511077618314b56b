import { SortedEntries } from './sorted-entries.js';

/** Which way a rule watches its value: `up` fires on reaching a level from below, `down` from above. */
export type Side = 'up' | 'down';

/**
 * One stream of values (a symbol's trade price, its mid, its spread, or the rise/fall of a
 * percent-change window) and the rules watching it, indexed by level. Four sorted sets:
 *
 *   armedUp     rules that fire when the value moves from < level to >= level   (key = level)
 *   armedDown   rules that fire when the value moves from > level to <= level   (key = level)
 *   waitUp      `up` rules that fired and re-arm once value <= level - rearmBy  (key = that point)
 *   waitDown    `down` rules that fired and re-arm once value >= level + rearmBy
 *
 * A move from `last` to v > last crosses exactly the armedUp keys in (last, v] and re-arms the
 * waitDown keys <= v; a move down is the mirror image. Both are one contiguous range of a sorted
 * set, so an update costs O(log n + rules crossed or re-armed), however many rules watch.
 * Invariant (kept because every wait key is placed on the far side of the value that fired it):
 * all waitUp keys are < last and all waitDown keys are > last.
 *
 * Rules added since the last value are `fresh`: the next value only arms them (it becomes their
 * first observation), so a rule never fires on a price it did not see move.
 */
export class ThresholdStream {
  /** last value seen; undefined before the first */
  last: number | undefined;
  readonly armedUp = new SortedEntries();
  readonly armedDown = new SortedEntries();
  readonly waitUp = new SortedEntries();
  readonly waitDown = new SortedEntries();
  /** slots armed by the next value: [slot, side, level] triples */
  fresh: number[] = [];
  /** rules on this stream (any state): the owner drops the stream at 0 */
  rules = 0;
  /**
   * user -> slots whose last crossing that user's spent firing budget swallowed: in no set, not
   * evaluated, until the budget holds a firing again (the engine puts them back)
   */
  readonly parked = new Map<string, number[]>();

  constructor(readonly key: string) {}

  /**
   * Apply a new value. Crossed slots are pushed to `crossed` (the caller decides fire, swallow or
   * drop and where the rule goes next); re-armed slots are moved back to an armed set here and
   * pushed to `rearmed` so the caller can record the state change.
   */
  update(v: number, crossed: number[], rearmed: number[], rearmedLevel: (slot: number) => number): void {
    const last = this.last;
    if (last !== undefined && v !== last) {
      if (v > last) {
        this.armedUp.takeRange(last, false, v, true, crossed);
        const from = rearmed.length;
        this.waitDown.takeRange(-Infinity, true, v, true, rearmed);
        for (let i = from; i < rearmed.length; i++) this.armedDown.insert(rearmedLevel(rearmed[i]!), rearmed[i]!);
      } else {
        this.armedDown.takeRange(v, true, last, false, crossed);
        const from = rearmed.length;
        this.waitUp.takeRange(v, true, Infinity, true, rearmed);
        for (let i = from; i < rearmed.length; i++) this.armedUp.insert(rearmedLevel(rearmed[i]!), rearmed[i]!);
      }
    } else if (last === undefined) {
      // the first value of a stream that has waiting rules (put back without the stream's last
      // value): nothing fires (no move was seen), but a rule the value is already back far enough
      // for re-arms, as it would have on the way there
      let from = rearmed.length;
      this.waitUp.takeRange(v, true, Infinity, true, rearmed);
      for (let i = from; i < rearmed.length; i++) this.armedUp.insert(rearmedLevel(rearmed[i]!), rearmed[i]!);
      from = rearmed.length;
      this.waitDown.takeRange(-Infinity, true, v, true, rearmed);
      for (let i = from; i < rearmed.length; i++) this.armedDown.insert(rearmedLevel(rearmed[i]!), rearmed[i]!);
    }
    this.last = v;
  }

  /** Arm the fresh rules at the current value; returns their slots (caller records state). */
  armFresh(armed: number[]): void {
    const f = this.fresh;
    for (let i = 0; i < f.length; i += 3) {
      const slot = f[i]!;
      if (f[i + 1] === 0) this.armedUp.insert(f[i + 2]!, slot);
      else this.armedDown.insert(f[i + 2]!, slot);
      armed.push(slot);
    }
    this.fresh = [];
  }

  addFresh(slot: number, side: Side, level: number): void {
    this.fresh.push(slot, side === 'up' ? 0 : 1, level);
  }

  removeFresh(slot: number): boolean {
    const f = this.fresh;
    for (let i = 0; i < f.length; i += 3) {
      if (f[i] === slot) {
        f.splice(i, 3);
        return true;
      }
    }
    return false;
  }
}
