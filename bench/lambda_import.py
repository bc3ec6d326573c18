"""A Lambda handler's cold import, timed in fresh interpreters (shared by the benchmarks).

Each figure is the median of ``runs`` new ``python -c`` processes with the Lambda
environment set, so nothing is cached in-process; it is set next to the same imports
without our code (the libraries, then the libraries plus the clients), so what our own
modules cost can be read off.
"""

from __future__ import annotations

import compileall
import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

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


def time_import(
    statement: str,
    env: dict[str, str],
    *,
    python: str = sys.executable,
    flags: tuple[str, ...] = (),
) -> float:
    """Milliseconds ``statement`` takes in a fresh interpreter."""
    code = (
        "import time; t = time.perf_counter(); "
        f"{statement}; print((time.perf_counter() - t) * 1000)"
    )
    out = subprocess.run(
        [python, *flags, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def report_cold_import(
    module: str,
    env: dict[str, str],
    *,
    function_name: str,
    services: tuple[str, ...],
    runs: int,
    target_ms: float | None = None,
) -> float:
    """Print the table for ``import module`` on this interpreter: the libraries, then
    the libraries and the handler's clients for ``services``, then the handler. botocore
    reads its data as the asset ships it (:func:`asset_botocore`). Returns the median."""
    env = in_lambda(env, function_name)
    traced = env.get("POWERTOOLS_TRACE_DISABLED") != "true"
    deps = "import botocore.session, aws_lambda_powertools" + (
        ", aws_xray_sdk.core" if traced else ""
    )
    label = "botocore + Powertools" + (" + X-Ray SDK" if traced else "") + " imports"
    clients = f"s = botocore.session.get_session(); [s.create_client(n) for n in {services!r}]"
    with asset_botocore() as path:
        env = env | {"PYTHONPATH": os.pathsep.join([path, env.get("PYTHONPATH", "")])}
        measured = {
            label: [time_import(deps, env) for _ in range(runs)],
            f"... + creating the {len(services)} clients": [
                time_import(f"{deps}; {clients}", env) for _ in range(runs)
            ],
            f"import {module}": [time_import(f"import {module}", env) for _ in range(runs)],
        }
    print(
        f"cold import, median of {runs} fresh interpreters (Lambda environment set, "
        f"tracing {'on' if traced else 'off'})"
    )
    for name, values in measured.items():
        print(f"  {name:<40} {statistics.median(values):7.1f} ms   (min {min(values):6.1f})")
    total = statistics.median(measured[f"import {module}"])
    ours = total - statistics.median(measured[f"... + creating the {len(services)} clients"])
    print(f"  our own modules and setup: about {ours:.0f} ms of {total:.0f} ms")
    if target_ms is not None:
        verdict = "within" if total < target_ms else "OVER"
        print(f"  => {total:.0f} ms: {verdict} the {target_ms:.0f} ms target")
    return total


@contextlib.contextmanager
def asset_botocore() -> Iterator[str]:
    """A folder holding this interpreter's botocore with its data cut to what the asset
    keeps (``infra.cold_start.prune_botocore_data``) and compiled, to put first on
    ``PYTHONPATH``: client creation then costs what it costs in the Lambda."""
    import botocore

    from imgsearch.blueprint import LAMBDA_AWS_SERVICES
    from infra.cold_start import prune_botocore_data

    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(Path(botocore.__file__).parent, Path(tmp) / "botocore")
        prune_botocore_data(Path(tmp), LAMBDA_AWS_SERVICES)
        compileall.compile_dir(tmp, quiet=1)
        yield tmp


def report_asset_import(module: str, env: dict[str, str], *, function_name: str, runs: int) -> None:
    """``import module`` from the bundled asset, on the Lambda runtime's Python version, as
    Lambda runs it: only the asset on ``sys.path`` and nothing written (``-I -B``; the
    real ``/var/task`` is read-only). Once with the bytecode the build ships, once
    without, which is what every cold start paid before ``infra.cold_start``."""
    from infra.bundling import LocalBundler, lambda_python  # starts jsii: bench-only
    from infra.lambda_deps import LAMBDA_PYTHON_VERSION

    python = lambda_python()
    print(f"the bundled asset on Python {LAMBDA_PYTHON_VERSION}, median of {runs} (-I -B)")
    if python is None:
        print(f"  skipped: no Python {LAMBDA_PYTHON_VERSION} here (IMGSEARCH_LAMBDA_PYTHON)")
        return
    arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    with tempfile.TemporaryDirectory() as tmp:
        asset = Path(tmp) / "asset"
        LocalBundler(arch).try_bundle(str(asset))
        bare = Path(tmp) / "bare"
        shutil.copytree(asset, bare, ignore=shutil.ignore_patterns("__pycache__"))
        for label, root in (("with the shipped bytecode", asset), ("without bytecode", bare)):
            run_env = in_lambda(env, function_name) | {"LAMBDA_TASK_ROOT": str(root)}
            values = [
                time_import(
                    f"import sys; sys.path.insert(0, {str(root)!r}); import {module}",
                    run_env,
                    python=str(python),
                    flags=("-I", "-B"),
                )
                for _ in range(runs)
            ]
            print(f"  {label:<40} {statistics.median(values):7.1f} ms   (min {min(values):6.1f})")


__all__ = ["in_lambda", "lambda_env", "report_asset_import", "report_cold_import", "time_import"]
