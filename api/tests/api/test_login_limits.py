"""The login limits' Lua scripts and their in-memory twin share one definition of their arguments."""

from __future__ import annotations

import re

import pytest

from app.auth import limits


@pytest.mark.parametrize(
    ("script", "args"),
    [
        (limits.RESERVE_SCRIPT, limits.ReserveArgs),
        (limits.FAIL_SCRIPT, limits.FailArgs),
        (limits.SUCCEED_SCRIPT, limits.AttemptArgs),
        (limits.RELEASE_SCRIPT, limits.AttemptArgs),
    ],
)
def test_each_script_reads_its_keys_arguments_and_verdicts_by_name(script: str, args: type) -> None:
    prologue, body = script.split("\n\n", 1)
    # No position is written by hand: KEYS and ARGV are read in the generated prologue only.
    assert not re.search(r"KEYS\[|ARGV\[", body)
    assert set(re.findall(r"\bargs\.(\w+)", body)) == set(args._fields)
    assert set(re.findall(r"\bkey\.(\w+)", body)) <= {f for f in limits.Keys.__dataclass_fields__}
    assert set(re.findall(r"\bverdict\.(\w+)", body)) <= {v.name.lower() for v in limits.Verdict}
    assert f"ARGV[{len(args._fields)}]" in prologue and f"ARGV[{len(args._fields) + 1}]" not in prologue


def test_redis_and_memory_answer_a_lockout_alike() -> None:
    """The memory twin reads the same NamedTuple the script is given: a lockout after the limit."""
    from app.settings.knobs import Tuning

    throttle = limits.LoginThrottle(Tuning(login_failures_per_account="2/15 minutes"), None)
    verdicts = [throttle.failed(throttle.admit("10.0.0.9", "x@acme.io")) for _ in range(2)]  # type: ignore[arg-type]
    assert verdicts[0] is None and verdicts[1] is not None and verdicts[1].lockout_started
    refused = throttle.admit("10.0.0.9", "x@acme.io")
    assert isinstance(refused, limits.Refusal) and refused.reason == "account_locked"
