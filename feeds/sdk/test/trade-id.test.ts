import { describe, expect, it } from 'vitest';
import { RecentIds, venueTradeId } from '../trade-id.js';

describe('trade id helpers', () => {
  it('venueTradeId qualifies an id with its venue, and leaves it alone without one', () => {
    expect(venueTradeId('D', 96921)).toBe('D:96921');
    expect(venueTradeId(4, '12345')).toBe('4:12345');
    expect(venueTradeId('4.202', '12345')).toBe('4.202:12345');
    expect(venueTradeId(undefined, 7)).toBe('7');
    expect(venueTradeId('', 7)).toBe('7');
    expect(venueTradeId('V', 4242)).not.toBe(venueTradeId('K', 4242));
  });

  it('RecentIds reports repeats per symbol and forgets the oldest id past its capacity', () => {
    const seen = new RecentIds(3);
    expect(seen.add('BTC-USD', '1')).toBe(true);
    expect(seen.add('BTC-USD', '1')).toBe(false);
    expect(seen.add('ETH-USD', '1')).toBe(true); // another symbol
    expect(seen.add('BTC-USD', '2')).toBe(true);
    expect(seen.add('BTC-USD', '3')).toBe(true);
    expect(seen.add('BTC-USD', '4')).toBe(true); // evicts '1'
    expect(seen.add('BTC-USD', '3')).toBe(false);
    expect(seen.add('BTC-USD', '1')).toBe(true);
    seen.clear();
    expect(seen.add('BTC-USD', '3')).toBe(true);
  });
});
