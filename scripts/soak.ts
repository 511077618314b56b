// npm run soak [-- --minutes 10 --seed 42 --rate 1000 --clients 6]
// Random restarts of NATS, Redis and gateways under load; checks exactly-once executions, last
// values against the feed, and memory. The logic is in test/soak/soak-run.ts (also run for a
// minute in CI by test/soak/soak-short.test.ts). Exit status 0 when every check passed.
import { runSoak } from '../test/soak/soak-run.js';

function flag(name: string, fallback: number): number {
  const args = process.argv.slice(2);
  const i = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  const raw = args[i]!.includes('=') ? args[i]!.split('=')[1] : args[i + 1];
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`soak: --${name} needs a positive number, got "${raw}"`);
    process.exit(2);
  }
  return v;
}

if (process.argv.includes('--help')) {
  console.log('usage: npm run soak -- [--minutes 10] [--seed N] [--rate 1000] [--clients 6]');
  process.exit(0);
}
const minutes = flag('minutes', 10);
const result = await runSoak({
  durationMs: minutes * 60_000,
  seed: flag('seed', Date.now() % 1_000_000),
  rate: flag('rate', 1000),
  clients: flag('clients', 6),
  faultGapMs: [5000, 15_000],
  downMs: [500, 3000],
  executionEveryMs: 100,
});
process.exit(result.ok ? 0 : 1);
