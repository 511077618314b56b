/**
 * What following the JetStream execution log costs, now that each message a follower's consumer
 * delivers is read again from the stream leader before it is handed on.
 *
 *   node --import tsx bench/exec-follow/run.ts [--events 2000] [--rounds 5]
 *
 * Starts a three-node nats-server cluster on loopback (test/helpers/ha-servers.ts), an R3
 * execution log, and appends `--events` executions spread over 20 users. Then times, over
 * `--rounds` rounds, how long a follower from the stream's start takes to hand on all of them:
 * - `follow`: JetStreamEventLog.follow (the consumer, each message checked against the leader);
 * - `consumer only`: the same kind of consumer (`consume` of the log module) without the check,
 *   what follow did before (and what a diverged replica could hand on unchecked).
 * Prints the median and max milliseconds and events per second of each, and the machine load
 * before and after.
 */
import { parseArgs } from 'node:util';
import { jetstream } from '@nats-io/jetstream';
import { consume } from '../../src/executions/jetstream-event-log.js';
import { BENCH_STREAM, clusterLog, load } from '../exec-log-cluster.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '5' } } });
const events = Number(values.events);
const rounds = Number(values.rounds);
console.log(`load before: ${load()}`);
const { nc, log, close } = await clusterLog();
try {
  const users = Array.from({ length: 20 }, (_, i) => `user-${i}`);
  for (let n = 0; n < events; n += users.length) {
    await Promise.all(
      users.slice(0, events - n).map((u, i) => log.append(u, { id: `e${n + i}`, order: `o${n + i}`, sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: n })),
    );
  }
  const js = jetstream(nc);

  const follow = (): Promise<void> =>
    new Promise((resolve) => {
      let got = 0;
      const stop = log.follow(
        () => {
          if (++got === events) {
            stop();
            resolve();
          }
        },
        { after: 0 },
      );
    });
  const consumerOnly = async (): Promise<void> => {
    const c = await js.consumers.get(BENCH_STREAM, { filter_subjects: 'exec.log.>', opt_start_seq: 1 });
    const messages = await consume(nc, c, 256);
    let got = 0;
    for await (const m of messages) {
      JSON.parse(new TextDecoder().decode(m.data));
      if (++got === events) break;
    }
    messages.stop();
  };
  const ways: [string, () => Promise<void>][] = [
    ['follow', follow],
    ['consumer only', consumerOnly],
  ];
  const times = new Map<string, number[]>(ways.map(([w]) => [w, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [way, run] of ways) {
      const t = performance.now();
      await run();
      times.get(way)!.push(performance.now() - t);
    }
  }
  for (const [way, ts] of times) {
    ts.sort((a, b) => a - b);
    const median = ts[Math.floor(ts.length / 2)]!;
    console.log(`${events} events, ${way}: median ${median.toFixed(0)} ms (${Math.round((events / median) * 1000)} events/s), max ${ts.at(-1)!.toFixed(0)} ms`);
  }
} finally {
  await close();
  console.log(`load after: ${load()}`);
}
