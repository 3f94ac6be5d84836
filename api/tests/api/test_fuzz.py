"""A bounded fuzz run: schemathesis against /openapi.json of the API under uvicorn.

Every operation, with an authenticated token, a fixed seed and no example database,
so a run is reproducible. Checks: no server error, and every status code, content
type, header and body the API answers is the one its OpenAPI document declares;
auth that the document requires is enforced; undeclared methods are 405. `make fuzz`
runs this test alone.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from ..conftest import Database
from .helpers import JWT, bearer, create_owner, login

pytestmark = pytest.mark.slow

ST = str(Path(sys.executable).with_name("st"))
SEED = 12
MAX_EXAMPLES = 150
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
    "unsupported_method",
    "missing_required_header",
)


def schemathesis(url: str, token: str, *selection: str, checks: tuple[str, ...] = CHECKS) -> tuple[int, str]:
    """Number of test cases run and the report; fails the test when schemathesis found anything."""
    result = subprocess.run(
        [
            ST,
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            ",".join(checks),
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--no-color",
            *selection,
        ],
        cwd=tempfile.gettempdir(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert token not in output  # schemathesis filters Authorization in what it prints
    found = re.search(r"(\d+) generated", output)
    assert found, f"schemathesis reported no test cases:\n{output[-3000:]}"
    assert result.returncode == 0, output[-6000:]
    return int(found.group(1)), output


def test_fuzz_every_operation_finds_no_server_error_and_nothing_undeclared(
    migrated: Database, redis_url: str, live_api: Any
) -> None:
    create_owner(migrated.url(), "Fuzz", "owner@fuzz.io")
    api = live_api({"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url})
    with api.client() as http:
        operations = {(m.upper(), p) for p, item in http.get("/openapi.json").json()["paths"].items() for m in item}
        main_token = login(http, "owner@fuzz.io")  # type: ignore[arg-type]
        logout_token = login(http, "owner@fuzz.io")  # type: ignore[arg-type]
    assert len(operations) == 8
    # Logout revokes its token, so it gets a token of its own and a run of its own.
    cases, output = schemathesis(api.url, main_token, "--exclude-path", "/v1/auth/logout")
    assert "7 selected / 8 total" in output and "Tested: 7" in output, output[-3000:]
    assert cases >= len(operations) * 10, output[-3000:]
    cases, output = schemathesis(api.url, logout_token, "--include-path", "/v1/auth/logout")
    assert "1 selected / 8 total" in output and cases > 0, output[-3000:]
    assert "Traceback" not in api.output()


def test_every_request_the_schema_allows_is_accepted(migrated: Database, redis_url: str, live_api: Any) -> None:
    create_owner(migrated.url(), "Fuzz", "owner@fuzz.io")
    env = {"DATABASE_URL": migrated.url(), "JWT_SECRET": JWT, "REDIS_URL": redis_url}
    api = live_api({**env, "ECOMIND_PASSWORD_MIN_LENGTH": "14"})
    with api.client() as http:
        token = login(http, "owner@fuzz.io")  # type: ignore[arg-type]
        schemas = http.get("/openapi.json").json()["components"]["schemas"]
        # Amounts: a number of at most 6 decimals below 10^12, or such a decimal as text; "" is not one.
        amount = schemas["NewEvent"]["properties"]["energy_wh"]
        assert schemas["NewEvent"]["properties"]["co2e_g"] == {**amount, "title": "Co2E G"}
        number, text = amount["anyOf"]
        assert number == {"type": "number", "minimum": 0, "exclusiveMaximum": 10**12, "multipleOf": 1e-06}
        assert text["type"] == "string" and not re.fullmatch(text["pattern"], "")
        body = {"kind": "inference"}
        for ok in ("0", "12.5", "999999999999.999999", 0, 12.5, 999999999999.5):
            response = http.post("/v1/events", json={**body, "energy_wh": ok, "co2e_g": ok}, headers=bearer(token))
            assert response.status_code == 201, (ok, response.text)
        # A new password: the length this server's policy needs, as its schema says.
        password = schemas["NewUser"]["properties"]["password"]
        assert password["minLength"] == 14
        new = {"email": "new@fuzz.io", "role": "VIEWER"}
        short = http.post("/v1/users", json={**new, "password": "Vq8#tLw2!pZ9x"}, headers=bearer(token))
        assert short.status_code == 422 and "at least 14 characters" in short.text
        fits = http.post("/v1/users", json={**new, "password": "Vq8#tLw2!pZ9xK"}, headers=bearer(token))
        assert fits.status_code == 201, fits.text
    # Valid data only: every request the published schema allows must get past validation
    # (2xx, or 401/403/409/429/503 for what a schema cannot know: credentials, a taken email).
    # Not in the run: POST /v1/users (a password's zxcvbn strength is no JSON Schema rule) and
    # the logins (an email whose domain is special-use, such as .test, is refused, and
    # "format: email" cannot say so).
    cases, output = schemathesis(
        api.url, token, "--include-path", "/v1/events", "--mode", "positive", checks=("positive_data_acceptance",)
    )
    assert cases > 0, output[-3000:]
