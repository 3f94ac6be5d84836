"""botocore's error codes are read in one place: the secret layer's translator (app/secrets/aws_errors.py).

Everywhere else, the backend (app/secrets/aws.py) included, asks
:func:`app.secrets.aws_errors.translate_error` what an error means (a denial, a
missing secret, a region that did not answer) and compares the typed error it returns. The
emulator adapter (app/secrets/emulator.py) may read a code too: the one moto hides inside a
403. The test reads the source, so an import or a branch no run reaches counts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"
# Where the codes are read: the translator, and the adapter of the emulator's answers.
READERS = {APP / "secrets" / "aws_errors.py", APP / "secrets" / "emulator.py"}
# Reaching into botocore's error answer: exc.response["Error"]["Code"], .get("Error", {}), ErrorCode.
_REACH = re.compile(r"""\[\s*["'](Error|ErrorCode)["']\s*\]|\.get\(\s*["'](Error|ErrorCode)["']""")
# An AWS error code: ResourceNotFoundException, AccessDenied, InvalidClientTokenId...
_CODE = re.compile(r"^[A-Z][a-z]+(?:[A-Z][a-z]+)*Exception$")


def _codes_the_translator_knows() -> set[str]:
    """Every string of app/secrets/aws_errors.py that is an error code: in its code sets, or compared with a code."""
    tree = ast.parse((APP / "secrets" / "aws_errors.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.endswith("_CODES") for t in node.targets
        ):
            found |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        elif isinstance(node, ast.Compare) and "code" in ast.unparse(node).lower():
            found |= {
                c.value
                for c in (node.left, *node.comparators)
                if isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value[:1].isupper()
            }
    return found


def reaches(source: str, known: set[str]) -> list[str]:
    """What in ``source`` reads a botocore error code: each as ``line N: what``."""
    found = [f"line {source.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in _REACH.finditer(source)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in known or _CODE.match(node.value):
                found.append(f"line {node.lineno}: the error code {node.value!r}")
    return found


def test_the_translator_knows_the_codes_it_reads() -> None:
    known = _codes_the_translator_knows()
    assert {"AccessDeniedException", "ResourceNotFoundException", "UnrecognizedClientException"} <= known


def test_no_module_but_the_translator_reads_a_botocore_error_code() -> None:
    known = _codes_the_translator_knows()
    found = {
        str(path.relative_to(APP.parent)): hits
        for path in sorted(APP.rglob("*.py"))
        if path not in READERS and (hits := reaches(path.read_text(), known))
    }
    assert found == {}, "ask app.secrets.aws_errors.translate_error what the error is instead"


@pytest.mark.parametrize(
    "source",
    [
        'code = exc.response["Error"]["Code"]\n',
        'code = exc.response.get("Error", {}).get("Code")\n',
        'denied = code == "AccessDeniedException"\n',
        'bad = code in ("UnrecognizedClientException",)\n',
        'gone = error["ErrorCode"] == "X"\n',
    ],
)
def test_the_check_sees_a_code_read_outside_the_translator(source: str) -> None:
    assert reaches(source, _codes_the_translator_knows())
