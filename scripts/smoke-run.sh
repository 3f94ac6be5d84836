#!/usr/bin/env bash
# CI check of the newcomer's promise: `make run` brings the API up on port 8000 with
# /ready 200 (on a fresh clone this also generates .env and starts a local
# PostgreSQL and Redis), then stops it and checks that it stopped what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
port=8000
log=$(mktemp)
setsid make run >"$log" 2>&1 &
pid=$!
stop() { kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 180); do
  if code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ready") && [ "$code" = 200 ]; then
    echo "make run: /ready 200 on port $port"
    stop
    trap - EXIT
    sleep 1
    if curl -s -o /dev/null "http://127.0.0.1:$port/health"; then
      echo "make run: the API still answers after SIGTERM" >&2
      exit 1
    fi
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "make run exited before the API was ready:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 1
done
echo "make run: /ready not 200 after 180 s" >&2
cat "$log" >&2
exit 1
