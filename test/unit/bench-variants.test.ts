import { describe, expect, it } from 'vitest';
import { parseVariants } from '../../bench/fanout/scenarios.js';
import { load1 } from '../../bench/fanout/variants.js';

describe('bench/fanout --variants', () => {
  it('reads batchMs, lanes, a checkout and names', () => {
    expect(parseVariants('50/1,100,burst=@/tmp/tickwire-burst,wide=100/4@../other,50/1x2')).toEqual([
      { label: '50/1', batchMs: 50, lanes: 1, root: undefined, workers: undefined },
      { label: '100', batchMs: 100, lanes: undefined, root: undefined, workers: undefined },
      { label: 'burst', batchMs: undefined, lanes: undefined, root: '/tmp/tickwire-burst', workers: undefined },
      { label: 'wide', batchMs: 100, lanes: 4, root: '../other', workers: undefined },
      { label: '50/1x2', batchMs: 50, lanes: 1, root: undefined, workers: 2 },
    ]);
  });

  it('refuses what it cannot read, naming the item', () => {
    expect(() => parseVariants('50/1,fast')).toThrow(/"fast" is not \[name=\]BATCH_MS/);
    expect(() => parseVariants('')).toThrow(/is not \[name=\]BATCH_MS/);
    expect(() => parseVariants('100/17')).toThrow(/lanes must be from 1 to 16, got 17 in "100\/17"/);
    expect(() => parseVariants('2000')).toThrow(/batchMs must be from 0 to 1000, got 2000/);
    expect(() => parseVariants('50/1x0')).toThrow(/workers must be from 1 to 64, got 0 in "50\/1x0"/);
    expect(() => parseVariants('50/1,50/1')).toThrow(/same name/);
  });

  it('takes the 1-minute load average out of an uptime line', () => {
    expect(load1(' 04:38:49 up  9:07,  0 user,  load average: 22.59, 26.46, 22.02')).toBe('22.59');
    expect(load1('uptime unavailable')).toBe('?');
  });
});
