"""The EcoMind API with its secrets resolved by Powertools instead of our layer: ``uvicorn powertools_app:app``.

What it does, in order, when uvicorn imports it:

1. takes every variable among DATABASE_URL, JWT_SECRET and REDIS_URL whose value is
   an ``aws-secretsmanager:NAME`` reference (a whole secret: no JSON key, stage or
   version, which is all this benchmark uses);
2. fetches those secrets with one Powertools ``parameters.get_secrets_by_name`` call
   (one ``BatchGetSecretValue``, Powertools' own boto3 client, region, endpoint and
   credentials from the environment as boto3 reads them);
3. puts each plain value into ``os.environ`` in place of its reference;
4. only then imports ``app.main`` and builds ``app = create_app()``.

The API is then the same code as ``app.main:app``: its settings find plain values,
so our layer makes no AWS call; its lifespan connects to PostgreSQL and Redis as
usual. This is how a service that adopted Powertools for start-up secrets would run
the same API, and what bench/startup.py compares our start against.
"""

from __future__ import annotations

import os

from aws_lambda_powertools.utilities import parameters

PREFIX = "aws-secretsmanager:"
VARIABLES = ("DATABASE_URL", "JWT_SECRET", "REDIS_URL")

references = {v: os.environ[v].removeprefix(PREFIX) for v in VARIABLES if os.environ.get(v, "").startswith(PREFIX)}
if references:
    values = parameters.get_secrets_by_name(list(references.values()))
    for variable, name in references.items():
        os.environ[variable] = str(values[name])

from app.main import create_app  # noqa: E402 - after the values are in the environment, on purpose

app = create_app()
