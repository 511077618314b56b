#!/usr/bin/env bash
# The whole test suite: installs nats-server/redis-server (and chromium) when missing, checks the
# uWebSockets.js native binary, builds, runs vitest, and prints a final "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
bash scripts/ensure-servers.sh || { echo "could not install test servers"; echo "0 passed, 1 failed"; exit 1; }
node --import tsx src/cli/main.ts check-uws || { echo "0 passed, 1 failed"; exit 1; }
# through build-if-stale, which records the hash of the sources it built: with it the tests spawn the
# compiled CLI and gateway workers instead of the sources through tsx (test/global-setup.ts). A dist/
# built from these very sources (same hash, e.g. by .ci/run just before) is not built again.
node scripts/build-if-stale.mjs || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
node scripts/check-runtime-deps.mjs || { echo "0 passed, 1 failed"; exit 1; }
mkdir -p test/artifacts
npx vitest run "$@"
status=$?
node scripts/summarize-tests.mjs test/artifacts/vitest-results.json "$status" || status=1
exit $status
