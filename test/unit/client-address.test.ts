import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { clientAddressKey, GatewayLimits } from '../../src/gateway/limits.js';

/**
 * Per-IP limits count an IPv6 client under its /64, the block one subscriber line or host is
 * given: an attacker rotating addresses inside its own prefix gets no fresh budget per address.
 */
describe('clientAddressKey', () => {
  it('keys IPv4, IPv4-mapped IPv6 and loopback by the address', () => {
    expect(clientAddressKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientAddressKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientAddressKey('0000:0000:0000:0000:0000:ffff:cb00:7107')).toBe('203.0.113.7');
    expect(clientAddressKey('::1')).toBe('::1');
    expect(clientAddressKey('0000:0000:0000:0000:0000:0000:0000:0001')).toBe('::1');
  });

  it('keys IPv6 by its /64, whatever the spelling', () => {
    const key = '2001:db8:1:2::/64';
    for (const ip of ['2001:db8:1:2::1', '2001:DB8:1:2:ffff::9', '2001:0db8:0001:0002:0000:0000:0000:0003', '2001:db8:1:2:a:b:c:d', '2001:db8:1:2::1%eth0']) {
      expect(clientAddressKey(ip), ip).toBe(key);
    }
    expect(clientAddressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientAddressKey('fe80::1')).toBe('fe80:0:0:0::/64');
  });

  it('leaves what is not an address as it is (lower case)', () => {
    expect(clientAddressKey('Not-An-IP')).toBe('not-an-ip');
    expect(clientAddressKey('1:2:3')).toBe('1:2:3');
  });
});

describe('the per-IP connection rate', () => {
  let limits: GatewayLimits | undefined;
  afterEach(() => limits?.close());

  it('counts the addresses of one IPv6 /64 together', () => {
    const cfg = loadConfig({ env: {}, overrides: { limits: { connectionsPerIpPerSec: 0.001, connectionBurstPerIp: 2 } } });
    limits = new GatewayLimits(cfg.limits);
    expect(limits.admitAddress('2001:db8:1:2::1', false)).toMatchObject({ ok: true });
    expect(limits.admitAddress('2001:0db8:0001:0002:0000:0000:0000:0002', false)).toMatchObject({ ok: true });
    expect(limits.admitAddress('2001:db8:1:2::3', false)).toMatchObject({ ok: false });
    // another /64 has its own budget
    expect(limits.admitAddress('2001:db8:1:3::1', false)).toMatchObject({ ok: true });
    expect(limits.stats.refusedPerIp).toBe(1);
  });
});
