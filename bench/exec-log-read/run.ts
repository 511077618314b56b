/**
 * What a long read of the JetStream execution log costs, now that a consumer's read is checked
 * against the stream leader.
 *
 *   node --import tsx bench/exec-log-read/run.ts [--events 1000] [--rounds 10]
 *
 * Starts a three-node nats-server cluster on loopback (test/helpers/ha-servers.ts), an R3
 * execution log, and appends `--events` executions for one user interleaved with as many for
 * another user. Then times, over `--rounds` rounds each, reads of 33 (the shortest read through
 * a consumer), 200 (a replay page) and all events:
 * - `read`: JetStreamEventLog.read (consumer, then the leader check);
 * - `consumer only`: the same ordered consumer and fetches without the check (the read before
 *   the check, which could return what a diverged replica held);
 * - `leader walk`: one STREAM.MSG.GET (next_by_subj) per event, what a read falls back to when
 *   the consumer's read differs from the leader.
 * Prints the median and max milliseconds of each and the machine load before and after.
 */
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { BENCH_STREAM, clusterLog, load } from '../exec-log-cluster.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '10' } } });
const events = Number(values.events);
const rounds = Number(values.rounds);
const USER = 'bench-user';
const STREAM = BENCH_STREAM;
const subject = `exec.log.${USER}`;

console.log(`load before: ${load()}`);
const { nc, log, close } = await clusterLog();
try {
  for (let n = 1; n <= events; n++) {
    await log.append(USER, { id: `e${n}`, order: `o${n}`, sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: n });
    await log.append('someone-else', { id: `x${n}`, order: `y${n}`, sym: 'AAPL', side: 'sell', qty: 1, p: 100, t: n });
  }
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const first = (await jsm.streams.getMessage(STREAM, { seq: 1, next_by_subj: subject } as unknown as { seq: number }))!;

  const consumerOnly = async (count: number): Promise<number> => {
    const c = await js.consumers.get(STREAM, { filter_subjects: subject, opt_start_seq: first.seq });
    let got = 0;
    try {
      while (got < count) {
        const batch = await c.fetch({ max_messages: Math.min(256, count - got), expires: 1000 });
        let n = 0;
        for await (const m of batch) {
          n++;
          JSON.parse(new TextDecoder().decode(m.data));
          if (++got >= count) break;
        }
        if (n === 0) break;
      }
    } finally {
      await c.delete().catch(() => undefined);
    }
    return got;
  };
  const leaderWalk = async (count: number): Promise<number> => {
    let got = 0;
    let m: { seq: number; data: Uint8Array } | null = first;
    while (m && got < count) {
      JSON.parse(new TextDecoder().decode(m.data));
      got++;
      m = await jsm.streams.getMessage(STREAM, { seq: m.seq + 1, next_by_subj: subject } as unknown as { seq: number });
    }
    return got;
  };
  const ways: [string, (count: number) => Promise<number>][] = [
    ['read', async (count) => (await log.read(USER, 0, count)).length],
    ['consumer only', consumerOnly],
    ['leader walk', leaderWalk],
  ];
  for (const count of [33, 200, events]) {
    const times = new Map<string, number[]>(ways.map(([w]) => [w, []]));
    for (let r = 0; r < rounds; r++) {
      for (const [way, run] of ways) {
        const t = performance.now();
        const got = await run(count);
        times.get(way)!.push(performance.now() - t);
        if (got !== count) throw new Error(`${way} read ${got} of ${count}`);
      }
    }
    const row = [...times].map(([way, ts]) => {
      ts.sort((a, b) => a - b);
      return `${way} median ${ts[Math.floor(ts.length / 2)]!.toFixed(1)} ms, max ${ts.at(-1)!.toFixed(1)} ms`;
    });
    console.log(`${count} events: ${row.join('; ')}`);
  }
} finally {
  await close();
  console.log(`load after: ${load()}`);
}
