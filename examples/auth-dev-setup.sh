#!/usr/bin/env bash
# A development setup with auth on (docs/auth.md#development-setup): the engine, a token for
# alice, the auth check, an execution through the service API, and alice's live streams.
# Run from the repository after `npm run build`: bash examples/auth-dev-setup.sh
set -euo pipefail
export HOST=127.0.0.1 PORT=${PORT:-8080}
export TICKWIRE_AUTH=required
export TICKWIRE_JWT_SECRET=dev-only-secret-change-me-0123456789abcdef # HS256: at least 32 characters
export TICKWIRE_SERVICE_TOKEN=dev-service-token                        # at least 16 characters

LOG_LEVEL=warn node bin/tickwire.js start &
trap 'kill $!' EXIT
until curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null; do sleep 0.2; done

# the token goes in a header (tap too; a browser's SDK offers it as the subprotocol
# tickwire.bearer.<jwt>), never in a URL: ?token= is accepted, but proxies log URLs
TOKEN=$(node bin/tickwire.js token --sub alice --ttl 1h --ent crypto,stock)
curl -s "http://127.0.0.1:$PORT/v1/auth/check" -H "Authorization: Bearer $TOKEN"; echo
curl -s "http://127.0.0.1:$PORT/v1/auth/check" -H "Authorization: Bearer not-a-jwt"; echo
curl -s -X POST "http://127.0.0.1:$PORT/v1/executions" \
  -H "Authorization: Bearer $TICKWIRE_SERVICE_TOKEN" -H 'content-type: application/json' \
  -d '{"user":"alice","id":"ex-1","order":"ord-1","sym":"AAPL","side":"buy","qty":10,"p":228.41,"t":1718000000123}'; echo
node bin/tickwire.js tap executions --url "ws://127.0.0.1:$PORT/v1/stream" --token "$TOKEN" --json --count 1
node bin/tickwire.js tap ticker:BTC-USD --url "ws://127.0.0.1:$PORT/v1/stream" --token "$TOKEN" --json --count 2
