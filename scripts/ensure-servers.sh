#!/usr/bin/env bash
# Install the real servers the test suite runs against, from Debian's packages, when missing.
set -euo pipefail
missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)   # Redis failover tests (test/faults/redis-sentinel.test.ts)
[ -x /usr/bin/chromium ] || missing+=(chromium)   # browser tests (playwright-core drives Debian chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} with apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian installs nats-server in /usr/sbin, which is not on every user's PATH
case ":$PATH:" in *:/usr/sbin:*) ;; *) echo "note: add /usr/sbin to PATH for nats-server" >&2 ;; esac
