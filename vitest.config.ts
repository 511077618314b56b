import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { SlowFirstSequencer } from './test/sequencer.js';

// workspace packages (packages/*) resolve to their TypeScript sources in tests: their `tickwire-source`
// export condition; built code (dist/) is what plain Node and the packed tarballs use
const conditions = ['tickwire-source', 'import', 'module', 'node', 'default'];

/**
 * Two projects. `shared`: test files that run in-process only (no server or child process started,
 * no heap measured) share a worker process, one file after another (`isolate: false`): no process
 * start-up and no re-import of the engine's modules per file. test/shared-process-guard.ts fails a
 * file that leaves the process changed (fake timers, env, cwd, listeners, open sockets, timers,
 * children). `isolated`: every other file in a process of its own, as before: the ones that start
 * nats-server, redis-server, chromium, the CLI or gateway workers, kill them (test/faults), or
 * measure the heap. A new file in a SHARED_DIRS folder that starts servers or processes or measures
 * the heap goes in ISOLATED.
 */
const SHARED_DIRS = [
  'feeds',
  'test/alerts',
  'test/auth',
  'test/book',
  'test/client',
  'test/compliance',
  'test/feeds',
  'test/history',
  'test/notifications',
  'test/private',
  'test/property',
  'test/unit',
];
const ISOLATED = new Set([
  'feeds/binance/test/binance-status.e2e.test.ts',
  'feeds/coinbase/test/coinbase-status.e2e.test.ts',
  'feeds/kraken/test/kraken-status.e2e.test.ts',
  'test/alerts/alert-metrics.test.ts',
  'test/alerts/alert-service.nats.test.ts',
  'test/alerts/alert-shutdown.nats.test.ts',
  'test/alerts/alert-service.test.ts',
  'test/alerts/alert-store.contract.test.ts',
  'test/alerts/alert-window-restart.test.ts',
  'test/alerts/alerts-delay-floor.nats.test.ts',
  'test/alerts/alerts-delay-floor.test.ts',
  'test/alerts/alerts-delay-mismatch.nats.test.ts',
  'test/alerts/alerts-api.test.ts',
  'test/alerts/alerts-doc.test.ts',
  'test/alerts/alerts-entitlements.nats.test.ts',
  'test/alerts/alerts-entitlements.test.ts',
  'test/alerts/alerts-process.test.ts',
  'test/alerts/alerts-unavailable.nats.test.ts',
  'test/alerts/alerts-unconfigured.test.ts',
  // a fetch() keep-alive connection to the closed gateway stays open (uWS's HTTP idle timeout)
  'test/auth/verifier-outage.test.ts',
  'test/book/book-entitlements.test.ts',
  'test/book/book-workers.test.ts',
  'test/client/auth-dev-setup.test.ts',
  'test/client/auth.test.ts',
  // esbuild's service: a child process kept for the next build
  'test/client/bundle.test.ts',
  'test/client/calls-after-close.test.ts',
  // an auth check server of its own
  'test/client/connect-close-connect.test.ts',
  'test/client/connect-timeout.test.ts',
  'test/client/examples.test.ts',
  'test/client/fallback.test.ts',
  'test/client/fetch-bars.test.ts',
  'test/client/long-session.test.ts',
  'test/client/many-channels.test.ts',
  'test/client/notifications-resume.test.ts',
  'test/client/package-install.test.ts',
  'test/client/rate-limited-subscribe.test.ts',
  'test/client/rate-limited-own-subscribes.test.ts',
  'test/client/reconnect-flapping.test.ts',
  'test/client/retry-after.test.ts',
  'test/client/tap.test.ts',
  'test/client/token-cli.test.ts',
  'test/client/typed-updates.test.ts',
  'test/client/unsubscribe-retry.test.ts',
  'test/client/visibility-retry.test.ts',
  'test/compliance/protocol-doc.test.ts',
  'test/feeds/feed-health.test.ts',
  'test/feeds/kraken.e2e.test.ts',
  'test/feeds/record.test.ts',
  'test/history/bar-keep-mismatch.test.ts',
  'test/history/bar-store.contract.test.ts',
  'test/history/bars-route.test.ts',
  'test/history/delayed-corrections.test.ts',
  'test/history/history-entitlements.test.ts',
  'test/history/history-read-budget.test.ts',
  'test/history/history-workers.test.ts',
  'test/history/http-live-seam.test.ts',
  'test/history/scale-out.test.ts',
  'test/history/sdk-history.test.ts',
  'test/history/trading-days.test.ts',
  'test/notifications/notifications-nats.test.ts',
  'test/notifications/notifications.test.ts',
  'test/notifications/read-state-budget.test.ts',
  'test/private/event-log-contract.test.ts',
  'test/private/execution-ids.test.ts',
  'test/private/executions.test.ts',
  'test/private/identity.test.ts',
  'test/private/inbound-concurrency.test.ts',
  'test/private/inbound-retry.test.ts',
  'test/private/jetstream-append-cost.test.ts',
  'test/private/jetstream-collision.test.ts',
  'test/private/jetstream-follow-diverged.test.ts',
  // stops its own nats-server for a moment (SIGSTOP)
  'test/private/jetstream-open-race.test.ts',
  'test/private/log-reset-resume.test.ts',
  'test/private/nats-mode.test.ts',
  'test/private/portfolio-bounds.test.ts',
  'test/private/portfolio-delayed.test.ts',
  'test/private/portfolio-entitlements.test.ts',
  'test/private/portfolio-late-event.test.ts',
  'test/private/portfolio-lost-book.test.ts',
  'test/private/portfolio-put-record.test.ts',
  'test/private/portfolio-races.test.ts',
  'test/private/portfolio-process.test.ts',
  'test/private/portfolio.test.ts',
  'test/private/replay-limits.test.ts',
  'test/property/frames.property.test.ts',
  'test/unit/config-keys.test.ts',
  'test/unit/connection-counts.test.ts',
]);

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.test.ts') && !e.parentPath.includes('node_modules'))
    .map((e) => join(e.parentPath, e.name));
}
const shared = SHARED_DIRS.flatMap(testFiles).filter((f) => !ISOLATED.has(f));

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['tickwire-source'] } },
  test: {
    exclude: ['**/node_modules/**', 'dist/**'],
    // dist/ fresh or not: whether spawned processes and gateway workers run compiled code
    globalSetup: ['test/global-setup.ts'],
    // shared files first, then the longest files first (test/durations.json): no slow file left
    // alone at the end of a run
    sequence: { sequencer: SlowFirstSequencer },
    pool: 'forks',
    // three worker processes on the 2-core CI box: most long files wait on real time (uWS's 10 s
    // HTTP timeout, failovers, the soak), so the box stayed 65% idle with two; with three it is 47%
    // idle and the run took 343 s against 484 s (2026-12-01, every test passed). Set here, not with
    // `--maxWorkers` on the command line, which the two projects below do not take.
    maxWorkers: 3,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: 'test/artifacts/vitest-results.json' }]],
    projects: [
      { extends: true, test: { name: 'shared', include: shared, isolate: false, setupFiles: ['test/shared-process-guard.ts'] } },
      {
        extends: true,
        test: { name: 'isolated', include: ['test/**/*.test.ts', 'feeds/**/*.test.ts'], exclude: ['**/node_modules/**', 'dist/**', ...shared] },
      },
    ],
  },
});
