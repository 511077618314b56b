import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { LocalConnectionCounts, SharedConnectionCounts, SharedIpBuckets } from '../../src/gateway/connection-counts.js';
import { waitFor } from '../helpers/wait.js';

/** A deterministic PRNG (mulberry32) for the random sequences. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('SharedConnectionCounts', () => {
  it('counts like a map per user, with the maximum checked in the same step', () => {
    const c = new SharedConnectionCounts(SharedConnectionCounts.allocate(16, 2), 2, 0);
    expect(c.tryAdd('alice', 2)).toBe(true);
    expect(c.tryAdd('alice', 2)).toBe(true);
    expect(c.tryAdd('alice', 2)).toBe(false);
    expect(c.tryAdd('alice', 0)).toBe(true); // 0: no maximum
    expect(c.get('alice')).toBe(3);
    expect(c.get('bob')).toBe(0);
    c.remove('alice');
    c.remove('alice');
    c.remove('alice');
    expect(c.get('alice')).toBe(0);
    expect(c.users).toBe(0);
    c.remove('nobody'); // harmless
    expect(c.users).toBe(0);
  });

  it('agrees with a plain map over random adds and removes of many users (probe runs and deletions)', () => {
    const buf = SharedConnectionCounts.allocate(1024, 3);
    const views = [0, 1, 2].map((w) => new SharedConnectionCounts(buf, 3, w));
    const model = new Map<string, number[]>();
    const rand = rng(42);
    for (let step = 0; step < 40_000; step++) {
      const user = `user-${Math.floor(rand() * 700)}`;
      const w = Math.floor(rand() * 3);
      const per = model.get(user) ?? [0, 0, 0];
      if (rand() < 0.55) {
        const total = per[0]! + per[1]! + per[2]!;
        const ok = views[w]!.tryAdd(user, 5);
        expect(ok).toBe(total < 5);
        if (ok) per[w]!++;
      } else if (per[w]! > 0) {
        views[w]!.remove(user);
        per[w]!--;
      }
      if (per.some((n) => n > 0)) model.set(user, per);
      else model.delete(user);
    }
    for (let i = 0; i < 700; i++) {
      const per = model.get(`user-${i}`) ?? [0, 0, 0];
      expect(views[0]!.get(`user-${i}`)).toBe(per[0]! + per[1]! + per[2]!);
    }
    expect(views[0]!.users).toBe(model.size);
    // a worker that ended: its counts go, the others' stay
    const main = new SharedConnectionCounts(buf, 3, -1);
    main.clearWorker(1);
    for (const [user, per] of model) {
      per[1] = 0;
      expect(main.get(user)).toBe(per[0]! + per[2]!);
    }
    expect(main.users).toBe([...model.values()].filter((p) => p[0]! + p[2]! > 0).length);
  });

  it('refuses rather than overflow when the table is full', () => {
    const c = new SharedConnectionCounts(SharedConnectionCounts.allocate(1024, 1), 1, 0);
    let added = 0;
    for (let i = 0; i < 2000; i++) if (c.tryAdd(`u${i}`, 0)) added++;
    expect(added).toBe(768); // 3/4 of 1024 slots
    expect(c.users).toBe(768);
  });

  it('never lets racing worker threads exceed the maximum together', async () => {
    const buf = SharedConnectionCounts.allocate(64, 4);
    const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
    const tsx = pathToFileURL(existsSync(cjs.replace(/\.cjs$/, '.mjs')) ? cjs.replace(/\.cjs$/, '.mjs') : cjs).href;
    const mod = new URL('../../src/gateway/connection-counts.ts', import.meta.url).href;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(tsx)}).then((api) => { (api.register ?? api.default.register)(); return import(${JSON.stringify(mod)}); }).then(({ SharedConnectionCounts }) => {
        const c = new SharedConnectionCounts(workerData.buf, 4, workerData.index);
        parentPort.postMessage('ready');
        Atomics.wait(new Int32Array(workerData.go), 0, 0); // start together
        let ok = 0;
        for (let i = 0; i < 20000; i++) if (c.tryAdd('carol', 1000)) ok++;
        parentPort.postMessage(ok);
      });`;
    const go = new SharedArrayBuffer(4);
    const workers = [0, 1, 2, 3].map((index) => new Worker(code, { eval: true, workerData: { buf, go, index } }));
    // each worker says 'ready' once loaded, just before it blocks on `go`, then sends its count
    let ready = 0;
    const results = workers.map(
      (w) =>
        new Promise<number>((resolve, reject) => {
          w.on('message', (m: unknown) => (m === 'ready' ? ready++ : resolve(m as number)));
          w.once('error', reject);
        }),
    );
    await waitFor(() => ready === workers.length, { what: 'the 4 workers to load', timeout: 30_000, interval: 10 });
    Atomics.store(new Int32Array(go), 0, 1);
    Atomics.notify(new Int32Array(go), 0);
    const counts = await Promise.all(results);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(new SharedConnectionCounts(buf, 4, -1).get('carol')).toBe(1000);
    await Promise.all(workers.map((w) => w.terminate()));
  }, 60_000);
});

describe('SharedConnectionCounts across threads, adds and removes interleaved', () => {
  it('never lets a connection in over the maximum while others close and open on other threads', async () => {
    // each thread opens (tryAdd) and closes (remove) one user's connections in a tight loop; an
    // independent atomic tally, raised after a granted add and lowered before a remove, never
    // exceeds the maximum if the check and the count are one step across threads
    const W = 2;
    const MAX = 3;
    const buf = SharedConnectionCounts.allocate(64, W);
    const tally = new SharedArrayBuffer(8);
    const cjs = createRequire(import.meta.url).resolve('tsx/esm/api');
    const tsx = pathToFileURL(existsSync(cjs.replace(/\.cjs$/, '.mjs')) ? cjs.replace(/\.cjs$/, '.mjs') : cjs).href;
    const mod = new URL('../../src/gateway/connection-counts.ts', import.meta.url).href;
    const code = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(${JSON.stringify(tsx)}).then((api) => { (api.register ?? api.default.register)(); return import(${JSON.stringify(mod)}); }).then(({ SharedConnectionCounts }) => {
        const c = new SharedConnectionCounts(workerData.buf, ${W}, workerData.index);
        const tally = new Int32Array(workerData.tally);
        Atomics.add(tally, 1, 1);
        while (Atomics.load(tally, 1) < ${W}) {} // start together
        let mine = 0, over = 0, granted = 0;
        for (let i = 0; i < 100000; i++) {
          if (mine > 0 && (i * 7 + workerData.index) % 3 === 0) { Atomics.sub(tally, 0, 1); c.remove('dan'); mine--; continue; }
          if (c.tryAdd('dan', ${MAX})) { granted++; mine++; if (Atomics.add(tally, 0, 1) + 1 > ${MAX}) over++; }
        }
        while (mine-- > 0) { Atomics.sub(tally, 0, 1); c.remove('dan'); }
        parentPort.postMessage({ over, granted });
      });`;
    const workers = Array.from({ length: W }, (_, index) => new Worker(code, { eval: true, workerData: { buf, tally, index } }));
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise<{ over: number; granted: number }>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          }),
      ),
    );
    for (const r of results) {
      expect(r.over).toBe(0);
      expect(r.granted).toBeGreaterThan(1000); // they did race
    }
    const main = new SharedConnectionCounts(buf, W, -1);
    expect(main.get('dan')).toBe(0);
    expect(main.users).toBe(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }, 60_000);
});

describe('SharedIpBuckets', () => {
  it('gives an address one bucket across workers: the burst, then the rate', () => {
    const buf = SharedIpBuckets.allocate(16);
    const epoch = 1_000_000;
    const a = new SharedIpBuckets(buf, 0, epoch);
    const b = new SharedIpBuckets(buf, 1, epoch);
    const t0 = epoch + 5000;
    let ok = 0;
    for (let i = 0; i < 20; i++) if ((i % 2 ? a : b).take('10.0.0.1', 5, 10, t0) === 0) ok++;
    expect(ok).toBe(10);
    expect(a.take('10.0.0.2', 5, 10, t0)).toBe(0); // another address has its own
    expect(b.take('10.0.0.1', 5, 10, t0 + 100)).toBe(100); // 0.5 token: the next in 100 ms
    expect(a.take('10.0.0.1', 5, 10, t0 + 200)).toBe(0); // 1 token after 200 ms at 5/s
    expect(b.take('10.0.0.1', 5, 10, t0 + 200)).toBe(200);
    // full buckets are forgotten by the sweep, the others kept
    a.sweep(5, 10, t0 + 300);
    expect(a.size).toBe(1); // 10.0.0.2 refilled its one token; 10.0.0.1 is still short
    a.sweep(5, 10, t0 + 10_000);
    expect(a.size).toBe(0);
  });
});

describe('LocalConnectionCounts', () => {
  it('checks and counts in one step', () => {
    const c = new LocalConnectionCounts();
    expect(c.tryAdd('a', 1)).toBe(true);
    expect(c.tryAdd('a', 1)).toBe(false);
    c.remove('a');
    expect(c.get('a')).toBe(0);
  });
});
