#!/usr/bin/env bash
# Run Alembic with the given arguments (default: upgrade head).
# DATABASE_URL comes from the environment, .env (development: the .env of the folder
# this is started from) or Secrets Manager, exactly as the API reads it. Concurrent
# runners are serialised by an advisory lock in alembic/env.py.
set -euo pipefail
export ECOMIND_ENV_FILE="${ECOMIND_ENV_FILE:-$PWD/.env}"
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
  set -- upgrade head
fi
exec "${PYTHON:-python3}" -m alembic -c alembic.ini "$@"
