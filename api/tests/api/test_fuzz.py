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

from ..conftest import Database
from .helpers import JWT, create_owner, login

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


def schemathesis(url: str, token: str, *selection: str) -> tuple[int, str]:
    """Number of test cases run and the report; fails the test when schemathesis found anything."""
    result = subprocess.run(
        [
            ST,
            "run",
            f"{url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--checks",
            ",".join(CHECKS),
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
