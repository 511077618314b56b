import { defineConfig } from 'vitest/config';
import { SlowFirstSequencer } from './test/sequencer.js';

// workspace packages (packages/*) resolve to their TypeScript sources in tests: their `tickwire-source`
// export condition; built code (dist/) is what plain Node and the packed tarballs use
const conditions = ['tickwire-source', 'import', 'module', 'node', 'default'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['tickwire-source'] } },
  test: {
    include: ['test/**/*.test.ts', 'feeds/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**'],
    // dist/ fresh or not: whether spawned processes and gateway workers run compiled code
    globalSetup: ['test/global-setup.ts'],
    // longest files first (test/durations.json): no slow file left alone at the end of a run
    sequence: { sequencer: SlowFirstSequencer },
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: 'test/artifacts/vitest-results.json' }]],
  },
});
