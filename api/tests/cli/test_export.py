"""`ecomind export`: dotenv lines that read back byte for byte, or a refusal that says to use JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dotenv import dotenv_values

from app.cli.export_cmd import dotenv_line
from app.secrets.sources import collect

from ..conftest import Cli, assert_clean
from .conftest import run_fix

AWKWARD = {
    "dollar": "a$HOME b",  # python-dotenv expands ${VAR} only
    "single quote": "it's",
    "double quote": 'say "hi"',
    "both quotes": "'\"'",
    "backslash": "C:\\new\\table",
    "escape lookalikes": "\\n \\t \\\\ \\' \\\"",
    "double backslash": "a\\\\b",  # single-quoted, python-dotenv would read one
    "trailing backslash": "ends with \\",
    "hash": "pw #not-a-comment",
    "leading hash": "#first",
    "spaces": "  padded  ",
    "newline": "line one\nline two\n",
    "equals": "a=b==c",
    "unicode": "pässwörd-日本-🔑",
    "braces": "{x} $ {HOME} $(id) `id`",
}


def read_back(tmp_path: Path, text: str) -> tuple[str | None, str | None]:
    """The value of JWT_SECRET in a .env holding ``text``: by python-dotenv, and by the app's reader."""
    path = tmp_path / "exported.env"
    path.write_text(text, encoding="utf-8")
    by_dotenv = dotenv_values(path).get("JWT_SECRET")
    by_app = collect({}, env_file=path).raw.get("JWT_SECRET")
    return by_dotenv, by_app


@pytest.mark.parametrize("case", list(AWKWARD))
def test_an_exported_dotenv_line_reads_back_byte_for_byte(cli: Cli, tmp_path: Path, case: str) -> None:
    value = AWKWARD[case]
    exported = cli("export", "--only", "JWT_SECRET", env={"JWT_SECRET": value})
    assert exported.returncode == 0, exported.stderr
    assert len(exported.stdout.splitlines()) == 1  # one line per variable, a line break escaped
    assert read_back(tmp_path, exported.stdout) == (value, value)


def test_an_empty_value_reads_back_empty(tmp_path: Path) -> None:
    line = dotenv_line("JWT_SECRET", "")
    by_dotenv, by_app = read_back(tmp_path, line + "\n")
    assert by_dotenv == "" and not by_app  # the app reads an empty value as unset, as it does in env


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x${HOME}y", "would expand"),
        ("${UNSET_IN_THIS_TEST:-default}", "would expand"),
        ("it's ${HOME}", "would expand"),
        ("carriage\rreturn", "carriage return"),
    ],
)
def test_a_value_dotenv_cannot_carry_is_refused_with_the_json_fix(cli: Cli, value: str, why: str) -> None:
    env = {"JWT_SECRET": value}
    refused = cli("export", "--only", "JWT_SECRET", env=env)
    assert_clean(refused, value)
    assert refused.returncode == 2 and refused.stdout == ""
    assert "JWT_SECRET" in refused.stderr and why in refused.stderr, refused.stderr
    [fix] = [line.split("fix: ", 1)[1] for line in refused.stderr.splitlines() if "fix: " in line]
    ran = run_fix(fix, env, cli.cwd)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"JWT_SECRET": value}


@pytest.mark.slow
def test_a_carriage_return_in_a_mounted_secret_file_is_refused_not_turned_into_a_line_break(cli: Cli) -> None:
    (cli.cwd / "jwt").write_bytes(b"carriage\rreturn\n")
    env = {"JWT_SECRET": f"file:{cli.cwd / 'jwt'}"}
    refused = cli("export", "--only", "JWT_SECRET", env=env)
    assert refused.returncode == 2 and refused.stdout == "", refused.stdout + refused.stderr
    assert "carriage return" in refused.stderr, refused.stderr
    [fix] = [line.split("fix: ", 1)[1] for line in refused.stderr.splitlines() if "fix: " in line]
    ran = run_fix(fix, env, cli.cwd)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"JWT_SECRET": "carriage\rreturn"}


def test_the_help_says_what_the_dotenv_format_guarantees(cli: Cli) -> None:
    text = " ".join(cli("export", "--help").stdout.split())
    assert "reads back byte for byte through python-dotenv" in text
    assert "is refused" in text and "--format json" in text
