#!/usr/bin/env bash
# Run Alembic with the given arguments (default: upgrade head), through `ecomind migrate`
# so a failure is one clear line, never a traceback holding connection details.
# DATABASE_URL comes from the environment, .env (development: the .env of the folder
# this is started from) or Secrets Manager, exactly as the API reads it. Concurrent
# runners are serialised by an advisory lock in alembic/env.py.
set -euo pipefail
if [ "$#" -eq 0 ]; then
  set -- upgrade head
fi
# `ecomind` on PATH (the image), else the repository's venv (api/scripts/ -> ../../.venv).
ecomind=$(command -v ecomind || true)
if [ -z "$ecomind" ]; then
  ecomind="$(cd "$(dirname "$0")/../.." && pwd)/.venv/bin/ecomind"
fi
if [ ! -x "$ecomind" ]; then
  echo "run_migrations.sh: ecomind not found on PATH nor in .venv; run make setup (or pip install -e api)" >&2
  exit 127
fi
env_file=()
if [ -n "${ECOMIND_ENV_FILE:-}" ]; then
  env_file=(--env-file "$ECOMIND_ENV_FILE")
fi
exec "$ecomind" migrate "${env_file[@]}" -- "$@"
