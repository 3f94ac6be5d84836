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
exec ecomind migrate --env-file "${ECOMIND_ENV_FILE:-$PWD/.env}" -- "$@"
