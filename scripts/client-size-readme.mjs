// Writes the client package's measured size (packages/client/dist/size.json, written by its build)
// into README.md, where test/client/package-install.test.ts checks it. Run after `npm run build`.
import { readFileSync, writeFileSync } from 'node:fs';
const size = JSON.parse(readFileSync(new URL('../packages/client/dist/size.json', import.meta.url), 'utf8'));
const readmeUrl = new URL('../README.md', import.meta.url);
const readme = readFileSync(readmeUrl, 'utf8');
const next = readme.replace(
  /\*\*[\d.]+ KiB\s+minified, [\d.]+ KiB minified and gzipped\*\*/,
  `**${(size.minified / 1024).toFixed(1)} KiB\nminified, ${(size.gzipped / 1024).toFixed(1)} KiB minified and gzipped**`,
);
if (next === readme && !readme.includes(`${(size.gzipped / 1024).toFixed(1)} KiB minified and gzipped`)) {
  console.error('README.md: the client size sentence was not found');
  process.exit(1);
}
writeFileSync(readmeUrl, next);
console.log(`README.md: client ${(size.minified / 1024).toFixed(1)} KiB minified, ${(size.gzipped / 1024).toFixed(1)} KiB gzipped`);
