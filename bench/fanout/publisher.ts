/**
 * The tick publisher: a child process that publishes quote ticks to NATS at a fixed rate, each
 * encoded once with the engine's tick codec on the engine's subjects, for a warm-up and then a
 * measured phase. Symbols are drawn uniformly at random (seeded), so per-symbol arrival is bursty
 * the way a real feed is, and the throttled run has something to conflate.
 *
 * Each quote carries the publisher's per-symbol sequence in `bs` and the phase in `as`, and its
 * creation time (wall clock, the same clock the load clients read) in `ts`/`rt`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { marketSubject } from '../../src/bus/subjects.js';
import type { QuoteTick } from '../../src/core/schema.js';
import { Prng } from '../../feeds/synthetic/prng.js';
import { BENCH_ASSET_CLASS, BENCH_SOURCE, PHASE_MEASURED, PHASE_WARMUP, symbolName, wallMs, type PublisherCommand, type PublisherReply } from './shared.js';

const send = (msg: PublisherReply): void => {
  process.send?.(msg);
};

/** seeded uniform [0, 1) source: the synthetic feed's PRNG (mulberry32) */
function rng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}

async function run(nc: NatsConnection, cmd: PublisherCommand): Promise<void> {
  const m = cmd.symbols;
  const names = Array.from({ length: m }, (_, i) => symbolName(i));
  const subjects = names.map((s) => marketSubject(BENCH_ASSET_CLASS, 'quote', s));
  const seq = new Array<number>(m).fill(0);
  const measured = new Array<number>(m).fill(0);
  const random = rng(cmd.seed);
  let sent = 0;

  const publishOne = (phase: number): void => {
    const i = Math.floor(random() * m);
    const s = ++seq[i]!;
    const nowMs = wallMs();
    const ns = BigInt(Math.round(nowMs * 1000)) * 1000n;
    const mid = 100 + (s % 100) / 100;
    const tick: QuoteTick = {
      k: 'quote',
      sym: names[i]!,
      src: BENCH_SOURCE,
      seq: s,
      ep: 1,
      ts: ns,
      rt: ns,
      bp: mid - 0.01,
      bs: s,
      ap: mid + 0.01,
      as: phase,
    };
    nc.publish(subjects[i]!, encodeTick(tick));
    if (phase === PHASE_MEASURED) measured[i]!++;
    sent++;
  };

  /** Publish `total` ticks over `ms` milliseconds, paced in ~1 ms steps; bounded in count and time. */
  const phase = async (tag: number, ms: number): Promise<number> => {
    const total = Math.round((cmd.rate * ms) / 1000);
    const start = wallMs();
    const deadline = start + ms * 3 + 5000;
    let done = 0;
    while (done < total) {
      const now = wallMs();
      if (now > deadline) break;
      const due = Math.min(total, Math.floor(((now - start) * cmd.rate) / 1000) + 1);
      while (done < due) {
        publishOne(tag);
        done++;
      }
      if (done < total) await sleep(1);
    }
    await nc.flush();
    return done;
  };

  if (cmd.warmupMs > 0) await phase(PHASE_WARMUP, cmd.warmupMs);
  const at = wallMs();
  send({ type: 'measuring', atMs: at });
  const n = await phase(PHASE_MEASURED, cmd.durationMs);
  const end = wallMs();
  send({ type: 'done', atMs: end, measured, finalSeq: seq, sent, measuredRate: n / ((end - at) / 1000) });
}

const url = process.env.NATS_URL;
if (!url) throw new Error('publisher needs NATS_URL');
const nc = await connect({ servers: url, name: 'bench-publisher' });
process.on('message', (cmd: PublisherCommand) => {
  if (cmd.type !== 'start') return;
  run(nc, cmd).catch((err: unknown) => send({ type: 'fatal', message: (err as Error).stack ?? String(err) }));
});
process.on('disconnect', () => {
  void nc.close().finally(() => process.exit(0));
});
send({ type: 'ready' });
