import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { waitFor } from './wait.js';

export interface BusFactory {
  create(onHandlerError: (err: Error) => void): Promise<Bus>;
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/**
 * The one contract every Bus implementation passes (memory and NATS). Absence of delivery is
 * checked after a sentinel message published later has arrived.
 */
export function busContract(name: string, factory: BusFactory): void {
  describe(`Bus contract: ${name}`, () => {
    let bus: Bus;
    const handlerErrors: Error[] = [];
    beforeEach(async () => {
      handlerErrors.length = 0;
      bus = await factory.create((e) => handlerErrors.push(e));
    });
    afterEach(async () => {
      await bus.close();
    });

    function recorder(pattern: string): { got: [string, string][]; stop: () => void } {
      const got: [string, string][] = [];
      const stop = bus.subscribe(pattern, (s, p) => got.push([s, dec(p)]));
      return { got, stop };
    }

    async function settle(): Promise<void> {
      const seen: string[] = [];
      const stop = bus.subscribe('contract.sentinel', (_s, p) => seen.push(dec(p)));
      await bus.flush();
      const token = String(Math.random());
      bus.publish('contract.sentinel', enc(token));
      await bus.flush();
      await waitFor(() => seen.includes(token), { what: 'the sentinel message', timeout: 5000, interval: 5 });
      stop();
    }

    it('delivers payload bytes on exact subjects, in publish order', async () => {
      const r = recorder('a.b.c');
      await bus.flush();
      for (let i = 0; i < 100; i++) bus.publish('a.b.c', enc(`m${i}`));
      bus.publish('a.b.x', enc('other'));
      await settle();
      expect(r.got.map((g) => g[1])).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
      expect(r.got.every((g) => g[0] === 'a.b.c')).toBe(true);
    });

    it('matches * as exactly one token', async () => {
      const r = recorder('md.*.trade.*');
      await bus.flush();
      bus.publish('md.stock.trade.AAPL', enc('1'));
      bus.publish('md.crypto.trade.BTC-USD', enc('2'));
      bus.publish('md.stock.quote.AAPL', enc('no'));
      bus.publish('md.stock.trade.AAPL.extra', enc('no'));
      bus.publish('md.stock.trade', enc('no'));
      await settle();
      expect(r.got).toEqual([
        ['md.stock.trade.AAPL', '1'],
        ['md.crypto.trade.BTC-USD', '2'],
      ]);
    });

    it('matches > as one or more trailing tokens', async () => {
      const r = recorder('md.stock.>');
      await bus.flush();
      bus.publish('md.stock.trade.AAPL', enc('1'));
      bus.publish('md.stock.x', enc('2'));
      bus.publish('md.stock', enc('no'));
      bus.publish('md.crypto.trade.BTC-USD', enc('no'));
      await settle();
      expect(r.got.map((g) => g[1])).toEqual(['1', '2']);
    });

    it('carries escaped symbols such as BRK.B on one token', async () => {
      const subject = marketSubject('stock', 'trade', 'BRK.B');
      const exact = recorder(subject);
      const wild = recorder('md.stock.trade.*');
      const brk = recorder('md.stock.trade.BRK');
      await bus.flush();
      bus.publish(subject, enc('x'));
      await settle();
      expect(exact.got).toEqual([[subject, 'x']]);
      expect(wild.got).toEqual([[subject, 'x']]);
      expect(brk.got).toEqual([]);
    });

    it('fans out to every subscriber and stops after unsubscribe (idempotent)', async () => {
      const a = recorder('f.x');
      const b = recorder('f.*');
      await bus.flush();
      bus.publish('f.x', enc('1'));
      await settle();
      a.stop();
      a.stop();
      bus.publish('f.x', enc('2'));
      await settle();
      expect(a.got.map((g) => g[1])).toEqual(['1']);
      expect(b.got.map((g) => g[1])).toEqual(['1', '2']);
    });

    it('keeps delivering to others when one handler throws', async () => {
      bus.subscribe('t.err', () => {
        throw new Error('boom');
      });
      const ok = recorder('t.err');
      await bus.flush();
      bus.publish('t.err', enc('1'));
      await settle();
      expect(ok.got.map((g) => g[1])).toEqual(['1']);
      expect(handlerErrors.length).toBe(1);
    });

    it('rejects invalid subject patterns', () => {
      for (const bad of ['', 'a..b', 'a.>.b', 'a b', 'a.b*']) expect(() => bus.subscribe(bad, () => undefined)).toThrow(/invalid subject/);
    });

    it('reports connected until closed', async () => {
      expect(bus.connected).toBe(true);
    });
  });
}
