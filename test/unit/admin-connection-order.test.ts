import { describe, expect, it } from 'vitest';
import { mergeSnapshots, OVERVIEW_QUERY, parseChannelQuery, parseConnectionQuery } from '../../src/admin/admin.js';
import type { AdminConnection, WorkerSnapshot } from '../../src/admin/admin.js';

const row = (id: string, o: Partial<AdminConnection> = {}): AdminConnection => ({
  id,
  user: null,
  ip: '127.0.0.1',
  encoding: 'json',
  subscriptions: [],
  subscriptionCount: 0,
  bufferedBytes: 0,
  slow: false,
  openedAt: 1000,
  ...o,
});
const worker = (connections: AdminConnection[]): WorkerSnapshot => ({
  connections,
  matched: connections.length,
  totals: {
    connections: connections.length,
    slow: connections.filter((c) => c.slow).length,
    bufferedBytes: connections.reduce((n, c) => n + c.bufferedBytes, 0),
  },
  channels: [],
});

describe('the connections the console shows first', () => {
  it('slow first, then the most buffered, then the newest; across workers; cut to the limit; totals summed', () => {
    const a = worker([row('a-old', { openedAt: 1 }), row('a-buffered', { bufferedBytes: 5000, openedAt: 2 }), row('a-new', { openedAt: 50 })]);
    const b = worker([
      row('b-slow', { slow: true, bufferedBytes: 10, openedAt: 3 }),
      row('b-more', { bufferedBytes: 9000, openedAt: 4 }),
      row('b-mid', { openedAt: 20 }),
    ]);
    const m = mergeSnapshots([a, b], { ...OVERVIEW_QUERY, limit: 5 });
    expect(m.connections.map((c) => c.id)).toEqual(['b-slow', 'b-more', 'a-buffered', 'a-new', 'b-mid']);
    expect(m.totals).toEqual({ connections: 6, slow: 1, bufferedBytes: 14010 });
    expect(m.matched).toBe(6);
  });

  it('the pages of /admin/api/connections: oldest first, ties by id', () => {
    const m = mergeSnapshots([worker([row('z', { openedAt: 5 }), row('c', { openedAt: 9 })]), worker([row('a', { openedAt: 5 })])], {
      order: 'opened',
      limit: 2,
    });
    expect(m.connections.map((c) => c.id)).toEqual(['a', 'z']);
  });

  it('parses the query strictly', () => {
    expect(parseConnectionQuery('')).toEqual({ order: 'opened', limit: 100 });
    expect(parseConnectionQuery('limit=500&after=1700000000000.AbC-_9&user=al%20ice&ip=%3A%3A1')).toEqual({
      order: 'opened',
      limit: 500,
      after: { openedAt: 1700000000000, id: 'AbC-_9' },
      user: 'al ice',
      ip: '::1',
    });
    expect(() => parseConnectionQuery('limit=501')).toThrow(/limit must be a whole number from 1 to 500/);
    expect(() => parseConnectionQuery('user=a&user=b')).toThrow(/"user" is given more than once/);
    expect(() => parseConnectionQuery('page=2')).toThrow(/unknown query parameter "page": this route takes limit, after, user, ip/);
  });
});

describe('the channels the console shows', () => {
  const ch = (channel: string, subscribers: number, tier = '0', updatesPerSec = 1) => ({ channel, subscribers, tiers: { [tier]: subscribers }, updatesPerSec });
  const part = (channels: ReturnType<typeof ch>[]): WorkerSnapshot => ({ ...worker([]), channels });

  it('a channel several workers serve is one row, summed before it is ordered, counted and cut', () => {
    // neither worker alone has quote:B as its busiest; summed it is
    const a = part([ch('quote:A', 3), ch('quote:B', 2), ch('trade:C', 1)]);
    const b = part([ch('quote:B', 2, '250', 4), ch('trade:D', 2)]);
    const m = mergeSnapshots([a, b], { ...OVERVIEW_QUERY, channels: { order: 'busiest', limit: 2 } });
    expect(m.channels).toEqual([
      { channel: 'quote:B', subscribers: 4, tiers: { 0: 2, 250: 2 }, updatesPerSec: 4 },
      { channel: 'quote:A', subscribers: 3, tiers: { 0: 3 }, updatesPerSec: 1 },
    ]);
    expect(m.channelTotals).toEqual({ channels: 4, subscribers: 10 });
    expect(m.channelsMatched).toBe(4);
    const page = mergeSnapshots([a, b], { order: 'opened', limit: 0, channels: { order: 'name', limit: 2, after: 'quote:A', search: 'T' } });
    expect(page.channels.map((c) => c.channel)).toEqual(['quote:B', 'trade:C']);
    expect(page.channelsMatched).toBe(4);
    expect(mergeSnapshots([a, b], { order: 'opened', limit: 0, channels: { order: 'name', limit: 5, search: 'trade' } }).channelsMatched).toBe(2);
  });

  it('parses the channel query: defaults, and 400 naming a bad parameter', () => {
    expect(parseChannelQuery('')).toEqual({ order: 'name', limit: 100 });
    expect(parseChannelQuery('limit=5&after=quote%3AA&search=btc')).toEqual({ order: 'name', limit: 5, after: 'quote:A', search: 'btc' });
    for (const [q, field] of [
      ['limit=0', 'limit'],
      ['order=x', 'order'],
      ['order=busiest&after=a', 'after'],
      ['x=1', 'x'],
    ] as const) {
      expect(() => parseChannelQuery(q), q).toThrow(expect.objectContaining({ status: 400, field }));
    }
  });
});
