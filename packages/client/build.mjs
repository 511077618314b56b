#!/usr/bin/env node
// Builds @tickwire/client into dist/: index.js (ESM, browser + Node, the protocol module of
// src/protocol and msgpackr's decoder bundled in, no dependencies) and index.d.ts (one bundled
// declaration file, the protocol types inlined). Writes and prints the minified+gzipped size a
// front end pays (dist/size.json). Usage: node build.mjs [--quiet]
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPackage } from '../../scripts/build-package.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const size = await buildPackage({
  name: '@tickwire/client',
  dir: here,
  // `ws` is imported on demand in Node only, through a non-literal specifier
  external: ['ws'],
  // the HTTP-streaming fallback is a chunk of its own, imported on first use (when WebSocket
  // upgrades are refused)
  chunks: true,
  checkInputs(inputs) {
    const engine = inputs.filter((p) => /^(src|feeds)\//.test(p) && !p.startsWith('src/protocol/'));
    if (engine.length) throw new Error(`@tickwire/client pulled in engine code: ${engine.join(', ')}`);
    if (inputs.some((p) => p.startsWith('node:'))) throw new Error('@tickwire/client pulled in a Node built-in');
  },
  // one declaration file: dts-bundle-generator inlines the relative imports (src/protocol)
  declarations: { bundle: true },
  quiet: process.argv.includes('--quiet'),
});
writeFileSync(
  join(here, 'dist', 'size.json'),
  `${JSON.stringify({ minified: size.minified, gzipped: size.gzipped, fallbackGzipped: size.chunksGzipped }, null, 2)}\n`,
);
