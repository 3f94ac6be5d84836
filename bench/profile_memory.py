"""What our layer holds beyond Powertools after importing and resolving K secrets.

Usage: python bench/profile_memory.py [--k 8] [--top 12] [--against powertools_get_secrets_by_name]

Starts moto's server (loopback, stopped at the end), then, for ours and the approach
it is held against, one fresh process each (``--child``) that starts tracemalloc
before any import, imports what the approach imports, resolves K secrets as
bench/approaches.py does, and reports:

* resident memory added (VmRSS) and the peak (VmHWM), as bench/coldstart_worker.py;
* Python memory still allocated (tracemalloc, in a second process: tracing inflates
  RSS), by package: each allocation goes to the innermost frame outside the standard
  library (so a ``json.loads`` that botocore calls counts as botocore's); the code
  objects the import machinery loads count as "module code (imports)", the top level
  of standard-library modules as "standard library";
* the modules imported, by top-level package, with the size of their compiled code
  on disk (``.pyc``, or the ``.so`` of an extension module);
* the lines of ours (api/app/) that lead to the most memory.

The parent prints ours against the other, largest differences first. bench/run_bench.py
runs it too and writes the first lines of it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import linecache
import os
import subprocess
import sys
import sysconfig
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
STDLIB = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
APP = str(ROOT / "api" / "app")
IMPORTS_LABEL = "module code (imports)"
FRAMES = 100  # deep enough to reach our line through nested imports and botocore


def _package(filename: str) -> str | None:
    """The package a file belongs to; None for the standard library."""
    if "site-packages" + os.sep in filename:
        top = filename.split("site-packages" + os.sep, 1)[1].split(os.sep, 1)[0]
        return top.removesuffix(".py").split(".", 1)[0]
    if filename.startswith(str(ROOT / "api" / "app")):
        parts = Path(filename).relative_to(ROOT / "api").with_suffix("").parts
        return ".".join(parts[:2]) if len(parts) > 2 else ".".join(parts)
    if filename.startswith(str(BENCH)):
        return "bench"
    if filename.startswith("<") or filename.startswith(STDLIB):
        return None
    return "other"


def _site(filename: str, lineno: int) -> str:
    for marker in ("site-packages" + os.sep, str(ROOT) + os.sep):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
    return f"{filename}:{lineno}"


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _module_size(module: Any) -> int:
    path = getattr(module, "__file__", None)
    if not path:
        return 0
    if path.endswith(".py"):
        try:
            cached = importlib.util.cache_from_source(path)
            if os.path.exists(cached):
                return os.path.getsize(cached)
        except (NotImplementedError, ValueError):
            pass
    return os.path.getsize(path) if os.path.exists(path) else 0


def _owner(traceback: tracemalloc.Traceback) -> str:
    """The package an allocation is charged to."""
    for depth, frame in enumerate(reversed(traceback)):  # innermost first
        if frame.filename.startswith("<frozen importlib"):
            # Inside an import: the code object being loaded, or the top level of a
            # standard-library module (a package's top level was met before this frame).
            return IMPORTS_LABEL if depth == 0 else "standard library"
        package = _package(frame.filename)
        if package is not None:
            return package
    return "standard library"


def _our_line(traceback: tracemalloc.Traceback) -> str | None:
    """The innermost line of the app (api/app/) that led to an allocation, with its source."""
    for frame in reversed(traceback):
        if frame.filename.startswith(APP):
            source = linecache.getline(frame.filename, frame.lineno).strip()
            return f"{_site(frame.filename, frame.lineno)}: {source}"
    return None


def child(approach: str, k: int, trace: bool) -> dict[str, Any]:
    """Import and resolve as the cold start does; with ``trace``, under tracemalloc (its RSS is then not comparable)."""
    before_rss = _status_kb("VmRSS")
    before_modules = set(sys.modules)
    if trace:
        tracemalloc.start(FRAMES)
    import approaches

    for module in approaches.IMPORTS[approach]:
        importlib.import_module(module)
    values = approaches.LOADERS[approach](k)
    assert len(values) == k
    if trace:
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        by_package: Counter[str] = Counter()
        lines: Counter[str] = Counter()
        for one in snapshot.traces:
            by_package[_owner(one.traceback)] += one.size
            line = _our_line(one.traceback)
            if line is not None:
                lines[line] += one.size
        return {
            "traced_kb": sum(by_package.values()) / 1024,
            "by_package_kb": {p: n / 1024 for p, n in by_package.items()},
            "our_lines_kb": {line: n / 1024 for line, n in lines.most_common(40)},
        }
    modules: dict[str, list[Any]] = {}
    for name in set(sys.modules) - before_modules:
        top = name.split(".", 1)[0]
        entry = modules.setdefault(top, [0, 0])
        entry[0] += 1
        entry[1] += _module_size(sys.modules[name])
    return {
        "rss_added_kb": _status_kb("VmRSS") - before_rss,
        "peak_added_kb": _status_kb("VmHWM") - before_rss,
        "modules": {top: {"count": c, "kb": size / 1024} for top, (c, size) in modules.items()},
        "module_count": len(set(sys.modules) - before_modules),
    }


def profile(env: dict[str, str], k: int, approaches: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """One fresh --child process per approach, in ``env`` (AWS_ENDPOINT_URL and AWS_REGION set)."""
    out: dict[str, dict[str, Any]] = {}
    for approach in approaches:
        out[approach] = {}
        for trace in (False, True):
            done = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--child", approach, "--k", str(k)]
                + (["--trace"] if trace else []),
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            out[approach].update(json.loads(done.stdout))
    return out


def summary(data: dict[str, dict[str, Any]], against: str, top: int) -> dict[str, Any]:
    ours, other = data["ours"], data[against]
    packages = set(ours["by_package_kb"]) | set(other["by_package_kb"])
    memory = sorted(
        ((p, ours["by_package_kb"].get(p, 0.0), other["by_package_kb"].get(p, 0.0)) for p in packages),
        key=lambda row: row[2] - row[1],
    )
    tops = set(ours["modules"]) | set(other["modules"])
    empty = {"count": 0, "kb": 0.0}
    modules = sorted(
        ((t, ours["modules"].get(t, empty), other["modules"].get(t, empty)) for t in tops),
        key=lambda row: row[2]["kb"] - row[1]["kb"],
    )
    return {
        "totals": {
            key: (ours[key], other[key]) for key in ("rss_added_kb", "peak_added_kb", "traced_kb", "module_count")
        },
        "memory": [row for row in memory if abs(row[1] - row[2]) >= 1][:top],
        "modules": [row for row in modules if row[1]["count"] != row[2]["count"]][:top],
        "lines": list(ours["our_lines_kb"].items())[:top],
    }


def render(s: dict[str, Any], against: str) -> list[str]:
    t = s["totals"]
    lines = [
        f"| | ours | {against} | difference |",
        "|---|---|---|---|",
        f"| resident memory added (VmRSS) | {t['rss_added_kb'][0] / 1024:.1f} MiB | "
        f"{t['rss_added_kb'][1] / 1024:.1f} MiB | {(t['rss_added_kb'][0] - t['rss_added_kb'][1]) / 1024:+.1f} MiB |",
        f"| peak added (VmHWM) | {t['peak_added_kb'][0] / 1024:.1f} MiB | {t['peak_added_kb'][1] / 1024:.1f} MiB | "
        f"{(t['peak_added_kb'][0] - t['peak_added_kb'][1]) / 1024:+.1f} MiB |",
        f"| Python memory still allocated (tracemalloc) | {t['traced_kb'][0] / 1024:.1f} MiB | "
        f"{t['traced_kb'][1] / 1024:.1f} MiB | {(t['traced_kb'][0] - t['traced_kb'][1]) / 1024:+.1f} MiB |",
        f"| modules imported | {t['module_count'][0]} | {t['module_count'][1]} | "
        f"{t['module_count'][0] - t['module_count'][1]:+d} |",
        "",
        "Python memory by package (tracemalloc; largest differences first):",
        "",
        f"| package | ours | {against} | difference |",
        "|---|---|---|---|",
    ]
    for package, mine, theirs in s["memory"]:
        lines.append(f"| {package} | {mine:,.0f} KiB | {theirs:,.0f} KiB | {mine - theirs:+,.0f} KiB |")
    lines += [
        "",
        "Modules imported, by top-level package (count, compiled size on disk; largest differences first):",
        "",
        f"| package | ours | {against} |",
        "|---|---|---|",
    ]
    for package, mine, theirs in s["modules"]:
        lines.append(
            f"| {package} | {mine['count']} ({mine['kb']:,.0f} KiB) | {theirs['count']} ({theirs['kb']:,.0f} KiB) |"
        )
    lines += [
        "",
        "Lines of ours that lead to the most Python memory (tracemalloc: each allocation goes to the innermost "
        "line of api/app/ in its traceback, so an import line holds what the modules it imports allocate, "
        "module code included):",
        "",
        "| line | KiB |",
        "|---|---|",
    ]
    lines += [f"| `{line}` | {kb:,.0f} |" for line, kb in s["lines"]]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--against", default="powertools_get_secrets_by_name")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.k, args.trace)))
        return 0
    sys.path.insert(0, str(ROOT / "api"))
    import boto3
    from approaches import names

    from tests.support.services import MotoServer

    moto = MotoServer().start()
    try:
        sm = boto3.client(
            "secretsmanager",
            region_name="us-east-1",
            endpoint_url=moto.url,
            aws_access_key_id="b",
            aws_secret_access_key="b",
        )
        for i, name in enumerate(names(args.k)):
            sm.create_secret(Name=name, SecretString=json.dumps({f"v{i}": f"value-{i}"}))
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=moto.url,
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
        )
        data = profile(env, args.k, ("ours", args.against))
    finally:
        moto.stop()
    print("\n".join(render(summary(data, args.against, args.top), args.against)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
