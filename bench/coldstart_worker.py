"""One cold start in a fresh process: python bench/coldstart_worker.py APPROACH K [--may-fail]

Prints JSON: the milliseconds from nothing constructed to all K values in hand
(imports excluded: they happen before the clock starts), the resident memory added
by importing and resolving (``rss_added_kb``: VmRSS after minus before) and the peak
added (``peak_added_kb``: VmHWM after minus VmRSS before).

With ``--may-fail`` (a cold start during an outage) a start that raises is a result,
not a crash: the milliseconds are then the time to the failure, ``started`` is false
and ``error`` names the exception's type.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def main() -> None:
    approach, k = sys.argv[1], int(sys.argv[2])
    may_fail = "--may-fail" in sys.argv[3:]
    before = status_kb("VmRSS")
    import approaches

    for module in approaches.IMPORTS[approach]:
        importlib.import_module(module)
    error = None
    started = time.perf_counter()
    try:
        values = approaches.LOADERS[approach](k)
    except Exception as exc:
        if not may_fail:
            raise
        values, error = [], type(exc).__name__
    elapsed = time.perf_counter() - started
    if error is None:
        assert len(values) == k and all(values), "not every value came back"
    print(
        json.dumps(
            {
                "ms": elapsed * 1000,
                "started": error is None,
                "error": error,
                "rss_added_kb": status_kb("VmRSS") - before,
                "peak_added_kb": status_kb("VmHWM") - before,
            }
        )
    )


if __name__ == "__main__":
    main()
