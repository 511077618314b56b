/**
 * What redacting a long hostile text costs (src/core/secrets.ts: every log line's strings, every
 * provider message a feed's health quotes): the texts of test/unit/redaction-cost.test.ts, whose
 * patterns once scanned to the end of the text from every word.
 *
 *   node --import tsx bench/redaction.ts
 *
 * Prints, per text, its size and the best of 5 runs of redactText in ms, and the machine load.
 */
import { loadavg } from 'node:os';
import { redactText } from '../src/core/secrets.js';
import { HOSTILE_TEXTS, KIB } from '../test/helpers/hostile-text.js';

console.log(
  `load before: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
for (const [name, text] of Object.entries(HOSTILE_TEXTS)) {
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    redactText(text);
    best = Math.min(best, performance.now() - t0);
  }
  console.log(`${name} (${Math.round(text.length / KIB)} KiB): ${best.toFixed(1)} ms`);
}
console.log(
  `load after: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
