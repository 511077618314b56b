#!/usr/bin/env node
// Builds @tickwire/react into dist/: index.js (ESM; react and @tickwire/client stay imports, so
// the app's single copies are used) and .d.ts files (tsc, checked against
// @tickwire/client's published types: build that package first). Prints the
// minified+gzipped size. Usage: node build.mjs [--quiet]
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPackage } from '../../scripts/build-package.mjs';

await buildPackage({
  name: '@tickwire/react',
  dir: dirname(fileURLToPath(import.meta.url)),
  external: ['react', 'react-dom', '@tickwire/client'],
  chunks: false,
  checkInputs(inputs) {
    const foreign = inputs.filter((p) => !p.startsWith('packages/react/src/'));
    if (foreign.length) throw new Error(`@tickwire/react bundled code from outside its package: ${foreign.join(', ')}`);
  },
  // declarations per module with tsc: imports of @tickwire/client and react stay imports, so the
  // app's TickwireClient is the one the provider takes (a bundled copy would be another type)
  declarations: { tsconfig: 'tsconfig.build.json' },
  // React Server Components (Next.js app router): a server component may import the provider and
  // render it; an RSC bundler then loads the package as a client module (where RSC run, react has
  // no createContext and no hooks: importing the package there failed)
  banner: '"use client";',
  quiet: process.argv.includes('--quiet'),
});
