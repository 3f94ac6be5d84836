"""One cold start in a fresh process: python bench/coldstart_worker.py APPROACH K

Prints JSON: the milliseconds from nothing constructed to all K values in hand
(imports excluded: they happen before the clock starts), and the resident memory
added by importing and resolving.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main() -> None:
    approach, k = sys.argv[1], int(sys.argv[2])
    before = rss_kb()
    import approaches

    for module in approaches.IMPORTS[approach]:
        importlib.import_module(module)
    started = time.perf_counter()
    values = approaches.LOADERS[approach](k)
    elapsed = time.perf_counter() - started
    assert len(values) == k and all(values), "not every value came back"
    print(json.dumps({"ms": elapsed * 1000, "rss_added_kb": rss_kb() - before}))


if __name__ == "__main__":
    main()
