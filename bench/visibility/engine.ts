/**
 * The gateway under test, in its own process so that its CPU time can be read from /proc: an
 * embedded engine (in-process bus, synthetic feed) over a universe of `--symbols` stocks.
 * Sends `{ port }` over IPC when listening and exits when the orchestrator goes away.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEngine } from '../../src/app/engine.js';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const symbols = arg('symbols', 200);
const rate = arg('rate', 4000);

const dir = mkdtempSync(join(tmpdir(), 'tickwire-bench-visibility-'));
const file = join(dir, 'instruments.json');
const instruments = Array.from({ length: symbols }, (_, i) => ({
  symbol: `S${String(i).padStart(3, '0')}`,
  assetClass: 'stock',
  currency: 'USD',
  refPrice: 50 + i,
}));
writeFileSync(file, JSON.stringify(instruments));

const engine = await startEngine({
  host: '127.0.0.1',
  port: 0,
  instrumentsFile: file,
  log: { level: 'silent' },
  synthetic: { rate, seed: 7 },
});
process.send?.({ port: engine.port });
process.on('disconnect', () => {
  void engine.close().finally(() => process.exit(0));
});
