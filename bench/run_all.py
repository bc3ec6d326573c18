"""Run every benchmark with its defaults (``make bench``); each prints its own figures.

The benchmarks print; they never assert. Run one alone with
``python -m bench.<name>`` (``--help`` for its options).
"""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.bench_embedder",
    "bench.bench_pipeline",
    "bench.bench_backfill",
    "bench.bench_thumbnails",
    "bench.bench_search_api",
)


def main() -> int:
    failed = []
    for module in BENCHMARKS:
        print(f"\n===== {module}", flush=True)
        if subprocess.call([sys.executable, "-m", module, *sys.argv[1:]]) != 0:
            failed.append(module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
