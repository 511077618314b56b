// Writes the client package's measured size (packages/client/dist/size.json, written by its build)
// into README.md and docs/client-sdk.md, where test/client/package-install.test.ts checks it. Run
// after `npm run build` (or `node packages/client/build.mjs`).
import { readFileSync, writeFileSync } from 'node:fs';
const size = JSON.parse(readFileSync(new URL('../packages/client/dist/size.json', import.meta.url), 'utf8'));
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
for (const file of ['../README.md', '../docs/client-sdk.md']) {
  const url = new URL(file, import.meta.url);
  const text = readFileSync(url, 'utf8');
  // the sentence may be wrapped anywhere between its words: keep the line break where it was
  const next = text.replace(
    /\*\*[\d.]+ KiB(\s+)minified, [\d.]+ KiB(\s+)minified(\s+)and(\s+)gzipped\*\*/,
    (_m, a, b, c, d) => `**${kib(size.minified)}${a}minified, ${kib(size.gzipped)}${b}minified${c}and${d}gzipped**`,
  );
  if (next === text && !text.replace(/\s+/g, ' ').includes(`${kib(size.minified)} minified, ${kib(size.gzipped)} minified and gzipped`)) {
    console.error(`${file.slice(3)}: the client size sentence was not found`);
    process.exit(1);
  }
  writeFileSync(url, next);
}
console.log(`README.md, docs/client-sdk.md: client ${kib(size.minified)} minified, ${kib(size.gzipped)} gzipped (${size.gzipped} bytes)`);
