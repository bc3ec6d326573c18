"""Work done at build time so the Lambda does not do it on every cold start.

* **Bytecode for the Lambda's Python.** Lambda's ``/var/task`` is read-only: a package
  shipped without ``__pycache__`` is compiled from source by every new execution
  environment, and never cached. For the embedder's import on 3.13 that is ~750 ms
  instead of ~285 ms here (``bench_embedder`` measures the bundled asset both ways).
  ``compileall`` with an interpreter of the runtime's minor version writes
  ``unchecked-hash`` ``.pyc`` files: valid whatever mtimes the zip carries, and the asset
  is immutable anyway.
* **botocore's data for the services the functions call, and nothing else.** Creating
  a client lists every service directory botocore ships (400+) and parses the 1.2 MB
  ``endpoints.json``; with only :data:`imgsearch.blueprint.LAMBDA_AWS_SERVICES` left,
  both cost next to nothing, and the dependencies shrink from ~40 to ~20 MB. A handler
  that creates a client for another service fails ``tests/unit/test_cold_import.py``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

LAMBDA_PYTHON_ENV = "IMGSEARCH_LAMBDA_PYTHON"
"""An interpreter of the Lambda runtime's Python version, when it is not found alone."""

Runner = Callable[[Sequence[str]], int]


def find_lambda_python(version: str, env: dict[str, str] | None = None) -> Path | None:
    """An interpreter of ``version`` ("3.13"): ``$IMGSEARCH_LAMBDA_PYTHON``, then
    ``pythonX.Y`` on PATH, then pyenv's and uv's installs. None if there is none."""
    env = dict(os.environ) if env is None else env
    candidates: list[str] = []
    if env.get(LAMBDA_PYTHON_ENV):
        candidates.append(env[LAMBDA_PYTHON_ENV])
    on_path = shutil.which(f"python{version}", path=env.get("PATH"))
    if on_path:
        candidates.append(on_path)
    home = Path(env.get("HOME", str(Path.home())))
    pyenv = Path(env.get("PYENV_ROOT", str(home / ".pyenv")))
    candidates += sorted(glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / "python3")))
    uv = home / ".local" / "share" / "uv" / "python"
    candidates += sorted(glob.glob(str(uv / f"cpython-{version}.*" / "bin" / "python3")))
    for candidate in candidates:
        if _is_version(candidate, version):
            return Path(candidate)
    return None


def _is_version(python: str, version: str) -> bool:
    """True if ``python`` runs and is ``version`` (a pyenv shim for another one does not)."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


LAMBDA_TASK_ROOT = "/var/task"
"""Where Lambda unpacks the asset: the source paths the bytecode records."""


def compile_command(python: Path, root: Path, asset_root: Path | None = None) -> list[str]:
    """``compileall`` for everything under ``root``, as the Lambda's interpreter reads it.

    The paths recorded in the bytecode are the ones Lambda will have (``/var/task/...``,
    ``asset_root`` being the folder that becomes ``/var/task``), not this machine's
    temporary folders: tracebacks read right, and the same code always gives the same
    bytes, so the asset hash stays put between synths.
    """
    return [
        str(python),
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(asset_root or root),
        "-p",
        LAMBDA_TASK_ROOT,
        str(root),
    ]


def no_bytecode_warning(version: str) -> str:
    return (
        f"warning: no Python {version} found, so the Lambda asset ships without bytecode "
        f"and every cold start compiles it (about a second); install Python {version} "
        f"or set {LAMBDA_PYTHON_ENV} to one"
    )


def prune_botocore_data(root: Path, services: Iterable[str]) -> None:
    """Keep botocore's data for ``services`` only (plus the top-level files), and cut
    ``endpoints.json`` down to them. A service not in botocore's data is an error."""
    data = root / "botocore" / "data"
    keep = set(services)
    present = {p.name for p in data.iterdir() if p.is_dir()}
    missing = keep - present
    if missing:
        raise ValueError(f"botocore in {root} has no data for {', '.join(sorted(missing))}")
    for name in sorted(present - keep):
        shutil.rmtree(data / name)
    endpoints = data / "endpoints.json"
    if endpoints.is_file():
        doc = json.loads(endpoints.read_text(encoding="utf-8"))
        for partition in doc.get("partitions", []):
            partition["services"] = {
                name: spec for name, spec in partition.get("services", {}).items() if name in keep
            }
        endpoints.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
