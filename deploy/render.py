#!/usr/bin/env python3
"""Render a deploy/ template with an environment's parameters.

Usage: deploy/render.py staging|production TEMPLATE [--set NAME=VALUE ...]

Templates use ${NAME}; the values come from deploy/environments/ENV.env, then
--set. A name without a value is an error, so nothing half-rendered is deployed.
Standard library only: it runs wherever the AWS CLI does.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


def parameters(environment: str) -> dict[str, str]:
    path = HERE / "environments" / f"{environment}.env"
    if not path.is_file():
        choices = ", ".join(sorted(p.stem for p in (HERE / "environments").glob("*.env")))
        raise SystemExit(f"render: no parameters for '{environment}' (choose from: {choices})")
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise SystemExit(f"render: {path.name}:{number}: expected NAME=VALUE")
        values[name.strip()] = value.strip()
    return values


def render(text: str, values: dict[str, str]) -> str:
    missing = sorted({m for m in PLACEHOLDER.findall(text) if m not in values})
    if missing:
        raise SystemExit(f"render: no value for {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("environment")
    parser.add_argument("template", type=Path)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    values = parameters(args.environment)
    for item in args.set:
        name, _, value = item.partition("=")
        values[name] = value
    sys.stdout.write(render(args.template.read_text(), values))
    return 0


if __name__ == "__main__":
    sys.exit(main())
