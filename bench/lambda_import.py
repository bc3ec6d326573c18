"""A Lambda handler's cold import, timed in fresh interpreters (shared by the benchmarks).

Each figure is the median of ``runs`` new ``python -c`` processes with the Lambda
environment set, so nothing is cached in-process; it is set next to the same imports
without our code (the libraries, then the libraries plus the clients), so what our own
modules cost can be read off.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from imgsearch.config import PipelineConfig
from infra.paths import FUNCTIONS_DIR


def lambda_env(cfg: PipelineConfig) -> dict[str, str]:
    """This process's environment plus ``cfg``'s function settings and fake credentials."""
    env = dict(os.environ)
    env.update(cfg.to_lambda_env())
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_ACCESS_KEY_ID", "bench")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    return env


def in_lambda(env: dict[str, str], function_name: str) -> dict[str, str]:
    """``env`` as inside Lambda: outside it the X-Ray recorder builds a sampling client
    (~160 ms) it never builds inside, and tracing is off."""
    return env | {"LAMBDA_TASK_ROOT": str(FUNCTIONS_DIR), "AWS_LAMBDA_FUNCTION_NAME": function_name}


def time_import(statement: str, env: dict[str, str]) -> float:
    """Milliseconds ``statement`` takes in a fresh interpreter."""
    code = (
        "import time; t = time.perf_counter(); "
        f"{statement}; print((time.perf_counter() - t) * 1000)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def report_cold_import(
    module: str,
    env: dict[str, str],
    *,
    function_name: str,
    libraries: tuple[str, str],
    clients: str,
    runs: int,
    target_ms: float | None = None,
) -> float:
    """Print the table for ``import module``; ``libraries`` is (label, import statement),
    ``clients`` the statement that also creates the handler's clients. Returns the median."""
    label, deps = libraries
    env = in_lambda(env, function_name)
    measured = {
        label: [time_import(deps, env) for _ in range(runs)],
        "... + creating the 3 clients": [
            time_import(f"{deps}; {clients}", env) for _ in range(runs)
        ],
        f"import {module}": [time_import(f"import {module}", env) for _ in range(runs)],
    }
    print(f"cold import, median of {runs} fresh interpreters (Lambda environment set)")
    for name, values in measured.items():
        print(f"  {name:<40} {statistics.median(values):7.1f} ms   (min {min(values):6.1f})")
    total = statistics.median(measured[f"import {module}"])
    ours = total - statistics.median(measured["... + creating the 3 clients"])
    print(f"  our own modules and setup: about {ours:.0f} ms of {total:.0f} ms")
    if target_ms is not None:
        verdict = "within" if total < target_ms else "OVER"
        print(f"  => {total:.0f} ms: {verdict} the {target_ms:.0f} ms target")
    return total


__all__ = ["in_lambda", "lambda_env", "report_cold_import", "time_import"]
