#!/usr/bin/env bash
# Build build/rotation-lambda.zip: the rotation handlers (app.rotation.postgres.handler,
# app.rotation.jwt.handler) with what they import, as Linux x86_64 wheels for the
# Lambda Python runtime: psycopg, aws-lambda-powertools (their EMF lines), pydantic.
# boto3 is left out: the runtime provides it. api/tests/rotation/test_lambda_build.py
# imports the handlers from what this script copies, with nothing else but the runtime's.
set -euo pipefail
cd "$(dirname "$0")/.."
py_version="${LAMBDA_PYTHON:-3.12}"
out=build/lambda
rm -rf "$out" build/rotation-lambda.zip
mkdir -p "$out"
pip="${PIP:-.venv/bin/pip}"
"$pip" install --quiet --target "$out" --platform manylinux2014_x86_64 --implementation cp \
  --python-version "$py_version" --only-binary=:all: \
  "psycopg[binary]>=3.1.18" "pydantic>=2.7" "aws-lambda-powertools>=3"
mkdir -p "$out/app/data"
# Of the package, the handlers import the secret layer, the rotation package, the one reading
# of a failed connection (data/failures.py), the one writer of a role's password
# (data/roles.py) and the telemetry catalog (telemetry.py).
cp api/app/__init__.py api/app/telemetry.py "$out/app/"
cp api/app/data/__init__.py api/app/data/failures.py api/app/data/roles.py "$out/app/data/"
cp -r api/app/secrets api/app/rotation "$out/app/"
find "$out" -name '__pycache__' -prune -exec rm -rf {} +
(cd "$out" && python3 -m zipfile -c ../rotation-lambda.zip .)
echo "built build/rotation-lambda.zip ($(du -h build/rotation-lambda.zip | cut -f1)); handlers: app.rotation.postgres.handler, app.rotation.jwt.handler"
