"""docs/security.md and docs/operations.md tell the truth about the knobs: every one, its name and its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from annotated_types import Le

from app.auth.hashing import ARGON2_MEMORY_KIB, memory_budget_mib
from app.settings.knobs import KNOBS, Tuning, TuningError

DOC = Path(__file__).resolve().parents[3] / "docs" / "security.md"
OPERATIONS = DOC.with_name("operations.md")  # the observability knobs


def documented() -> dict[str, str]:
    rows = [
        row
        for doc in (DOC, OPERATIONS)
        for row in re.findall(r"^\| `(ECOMIND_[A-Z_]+)` \| `([^`]*)` \|", doc.read_text(), re.M)
    ]
    table = dict(rows)
    assert len(table) == len(rows), "a knob is documented twice"
    return table


def rows() -> dict[str, str]:
    """Each knob's whole row of its table."""
    text = DOC.read_text() + OPERATIONS.read_text()
    return dict(re.findall(r"^\| `(ECOMIND_[A-Z_]+)` \|(.*)$", text, re.M))


def test_every_knob_is_documented_with_its_default() -> None:
    table = documented()
    defaults = Tuning()
    assert set(table) == set(KNOBS.values())
    for name in Tuning.model_fields:
        default = getattr(defaults, name)
        shown = table[KNOBS[name]]
        assert shown == (f"{default:g}" if isinstance(default, float) else str(default)), name


def test_every_bounded_knob_states_its_upper_bound_in_its_row() -> None:
    table = rows()
    bounded = {
        KNOBS[name]: next(m.le for m in field.metadata if isinstance(m, Le))
        for name, field in Tuning.model_fields.items()
        if any(isinstance(m, Le) for m in field.metadata)
    }
    assert {"ECOMIND_BODY_TIMEOUT", "ECOMIND_HEADER_TIMEOUT", "ECOMIND_METRICS_TIMEOUT"} <= set(bounded)
    for variable, high in bounded.items():
        assert re.search(rf"\b{high}\b", table[variable]), (variable, high)


def test_the_documented_budget_is_the_computed_one() -> None:
    text = DOC.read_text()
    assert f"**{memory_budget_mib(Tuning().hash_workers)} MiB**" in text
    assert f"{ARGON2_MEMORY_KIB // 1024} MiB of\nmemory, 2 iterations, 1 lane" in text


def test_knobs_are_read_from_the_environment_and_bad_values_named() -> None:
    tuning = Tuning.from_env({"ECOMIND_HASH_WORKERS": "4", "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "3/minute"})
    assert tuning.hash_workers == 4 and tuning.account_item.amount == 3
    assert Tuning.from_env({}) == Tuning()
    # The exact name only; a blank value is unset, blanks around one are dropped.
    assert Tuning.from_env({"ecomind_hash_workers": "4", "ECOMIND_HASH_QUEUE": "  "}) == Tuning()
    assert Tuning.from_env({"ECOMIND_HASH_WORKERS": " 4 "}).hash_workers == 4
    with pytest.raises(TuningError) as info:
        Tuning.from_env({"ECOMIND_HASH_WORKERS": "many", "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "lots"})
    assert "ECOMIND_HASH_WORKERS" in str(info.value) and "ECOMIND_LOGIN_FAILURES_PER_ADDRESS" in str(info.value)


@pytest.mark.parametrize(
    ("env", "named", "why"),
    [
        ({"ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "0/minute"}, "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT", "at least 1"),
        (
            {"ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "5/15 minutes;1/second"},
            "ECOMIND_LOGIN_FAILURES_PER_ADDRESS",
            "one rate",
        ),
        ({"ECOMIND_HASH_WORKERS": "1000"}, "ECOMIND_HASH_WORKERS", "1 to 16"),
        ({"ECOMIND_HASH_QUEUE": "39"}, "ECOMIND_HASH_QUEUE", "request threads"),
        ({"ECOMIND_REQUEST_THREADS": "0"}, "ECOMIND_REQUEST_THREADS", "1 to 200"),
        ({"ECOMIND_REQUEST_THREADS": "500"}, "ECOMIND_REQUEST_THREADS", "1 to 200"),
        ({"ECOMIND_REQUEST_THREADS": "20"}, "(2 + 16) must be at most 12", "ECOMIND_REQUEST_THREADS"),
        ({"ECOMIND_PASSWORD_MIN_LENGTH": "0"}, "ECOMIND_PASSWORD_MIN_LENGTH", "8 to 1024"),
        ({"ECOMIND_PASSWORD_MIN_LENGTH": "2000"}, "ECOMIND_PASSWORD_MIN_LENGTH", "8 to 1024"),
        ({"ECOMIND_LOCKOUT_MAX_SECONDS": "30"}, "ECOMIND_LOCKOUT_MAX_SECONDS (30)", "ECOMIND_LOCKOUT_SECONDS (60)"),
        ({"ECOMIND_DB_CONNECT_TIMEOUT": "1"}, "ECOMIND_DB_CONNECT_TIMEOUT", "at least 2"),
        # The attacker's re-check: values that parse but cannot work.
        ({"ECOMIND_USER_CACHE_SECONDS": "inf"}, "ECOMIND_USER_CACHE_SECONDS='inf'", "not a finite number"),
        ({"ECOMIND_DB_STATEMENT_TIMEOUT": "nan"}, "ECOMIND_DB_STATEMENT_TIMEOUT='nan'", "not a finite number"),
        ({"ECOMIND_DB_POOL_TIMEOUT": "inf"}, "ECOMIND_DB_POOL_TIMEOUT='inf'", "not a finite number"),
        ({"ECOMIND_USER_CACHE_SECONDS": "3600"}, "ECOMIND_USER_CACHE_SECONDS", "0 to 300"),
        ({"ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "5/0 minutes"}, "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT", "at least 1"),
        ({"ECOMIND_BODY_TIMEOUT": "1e9"}, "ECOMIND_BODY_TIMEOUT", "above 0 and at most 3600"),
        ({"ECOMIND_HEADER_TIMEOUT": "3601"}, "ECOMIND_HEADER_TIMEOUT", "above 0 and at most 3600"),
        ({"ECOMIND_METRICS_TIMEOUT": "0"}, "ECOMIND_METRICS_TIMEOUT", "above 0 and at most 3600"),
    ],
)
def test_unusable_values_are_refused_with_the_variable_named(env: dict[str, str], named: str, why: str) -> None:
    with pytest.raises(TuningError) as info:
        Tuning.from_env(env)
    assert named in str(info.value) and why in str(info.value), str(info.value)


def test_the_edges_that_work_are_accepted() -> None:
    Tuning.from_env(
        {
            "ECOMIND_LOGIN_FAILURES_PER_ACCOUNT": "1/minute",
            "ECOMIND_HASH_WORKERS": "16",
            "ECOMIND_HASH_QUEUE": "16",
            "ECOMIND_PASSWORD_MIN_LENGTH": "8",
            "ECOMIND_LOCKOUT_SECONDS": "3600",
            "ECOMIND_USER_CACHE_SECONDS": "300",
            "ECOMIND_LOGIN_FAILURES_PER_ADDRESS": "30/10 minutes",
        }
    )


def test_a_tuning_built_in_code_is_held_to_the_same_ranges() -> None:
    with pytest.raises(ValueError, match="hash_workers"):
        Tuning(hash_workers=0)
