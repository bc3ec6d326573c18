"""Install the Lambda runtime dependencies for the Lambda platform, without Docker.

``python -m infra.lambda_deps --lock functions/requirements.lock`` (``make build``)
pip-installs the hashed lock of ``functions/requirements.txt`` as manylinux wheels for
CPython 3.13 (the Lambda runtime) into ``build/lambda-deps-<arch>`` for each
architecture, with ``--require-hashes --no-deps``: exactly the locked files, nothing
resolved on the day. The CDK app's local bundling (``infra/bundling.py``, which names
the lock and ``functions/``) copies that folder next to our own code, so ``cdk synth``
never runs Docker and never downloads anything.

Each folder carries a stamp with the hash of everything that decides its content
(the lock file, Python version, platforms, pip flags). A second run with the same
inputs does nothing; a changed lock reinstalls from scratch into a temporary folder
that replaces the old one only on success, so a failed install never leaves a
half-filled folder that looks finished.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from imgsearch.blueprint import LAMBDA_AWS_SERVICES
from imgsearch.config import Architecture
from infra.cold_start import (
    compile_command,
    find_lambda_python,
    no_bytecode_warning,
    prune_botocore_data,
)
from infra.paths import BUILD_DIR

"""Where the dependency folders go (``build/`` at the repository root, git-ignored)."""
LAMBDA_PYTHON_VERSION = "3.13"
"""CPython version of the Lambda runtime (``Runtime.PYTHON_3_13`` in the stack)."""
STAMP_NAME = ".imgsearch-deps-stamp"
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)
_PLATFORMS: dict[str, tuple[str, ...]] = {
    # Lambda's Python 3.13 runtime is Amazon Linux 2023 (glibc 2.34): manylinux2014
    # (glibc 2.17) wheels run there, and so do manylinux_2_28 ones.
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}

Runner = Callable[[Sequence[str]], int]
"""Runs a command and returns its exit status (tests substitute their own)."""


class BuildError(RuntimeError):
    """The dependencies could not be installed; the message says what to do."""


@dataclass(frozen=True)
class DepsBuild:
    """One architecture's dependency folder and the inputs that decide its content."""

    arch: str
    lock: Path
    """The hashed, fully pinned requirements (``make lock`` writes it)."""
    build_dir: Path = BUILD_DIR
    python: Path | None = None
    """An interpreter of :data:`LAMBDA_PYTHON_VERSION` to write the bytecode with
    (``infra.cold_start.find_lambda_python``); None ships none, with a warning."""

    def __post_init__(self) -> None:
        if self.arch not in _PLATFORMS:
            raise BuildError(
                f"unknown architecture {self.arch!r}; allowed: {', '.join(ARCHITECTURES)}"
            )

    @property
    def target(self) -> Path:
        return deps_dir(self.arch, self.build_dir)

    def pip_args(self, target: Path) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--only-binary=:all:",
            "--require-hashes",
            "--no-deps",
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON_VERSION,
        ]
        for platform in _PLATFORMS[self.arch]:
            args += ["--platform", platform]
        return [*args, "--target", str(target), "-r", str(self.lock)]

    def expected_stamp(self) -> str:
        """Hash of everything that decides the folder's content."""
        if not self.lock.is_file():
            raise BuildError(f"{self.lock}: lock file not found (`make lock` writes it)")
        inputs = {
            "lock": self.lock.read_text(encoding="utf-8"),
            "python": LAMBDA_PYTHON_VERSION,
            # the command minus the interpreter and the paths, which may differ per clone
            "pip": self.pip_args(Path("TARGET"))[1:-3],
            "botocore_services": sorted(LAMBDA_AWS_SERVICES),
            "bytecode": compile_command(Path("PY"), Path("ROOT"))[1:] if self.python else None,
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()

    def is_up_to_date(self) -> bool:
        stamp = self.target / STAMP_NAME
        return stamp.is_file() and stamp.read_text().strip() == self.expected_stamp()

    def run(self, runner: Runner, *, force: bool = False) -> bool:
        """Install unless up to date; returns True if it installed."""
        if not force and self.is_up_to_date():
            return False
        stamp = self.expected_stamp()
        tmp = self.target.with_name(self.target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        status = runner(self.pip_args(tmp))
        if status != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BuildError(
                f"pip failed (exit {status}) installing {self.lock} for Lambda "
                f"{self.arch}; every requirement needs a manylinux wheel for CPython "
                f"{LAMBDA_PYTHON_VERSION} whose hash the lock lists (see pip's message above)"
            )
        # console scripts are of no use inside a Lambda and carry this machine's paths
        shutil.rmtree(tmp / "bin", ignore_errors=True)
        if (tmp / "botocore" / "data").is_dir():
            prune_botocore_data(tmp, LAMBDA_AWS_SERVICES)
        if self.python is None:
            print(no_bytecode_warning(LAMBDA_PYTHON_VERSION), file=sys.stderr)
        elif runner(compile_command(self.python, tmp)) != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise BuildError(f"{self.python} could not compile the Lambda dependencies")
        (tmp / STAMP_NAME).write_text(stamp + "\n")
        shutil.rmtree(self.target, ignore_errors=True)
        tmp.rename(self.target)
        return True


def deps_dir(arch: str, build_dir: Path = BUILD_DIR) -> Path:
    """Where ``make build`` puts the dependencies for ``arch`` (read by the bundling)."""
    return build_dir / f"lambda-deps-{arch}"


def _run(cmd: Sequence[str]) -> int:
    return subprocess.run(list(cmd), check=False).returncode


def main(argv: Sequence[str] | None = None, runner: Runner = _run) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.lambda_deps",
        description="Install a hashed lock for the Lambda platform (no Docker).",
    )
    parser.add_argument(
        "--arch",
        choices=[*ARCHITECTURES, "all"],
        default="all",
        help="Lambda architecture to build for (default: all)",
    )
    parser.add_argument("--force", action="store_true", help="reinstall even if up to date")
    parser.add_argument(
        "--lock",
        type=Path,
        required=True,
        help="the hashed lock to install (the CDK app reads functions/requirements.lock)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=BUILD_DIR,
        help="where lambda-deps-<arch> go; the CDK app reads the default (%(default)s)",
    )
    args = parser.parse_args(argv)
    arches = ARCHITECTURES if args.arch == "all" else (args.arch,)
    python = find_lambda_python(LAMBDA_PYTHON_VERSION)
    try:
        for arch in arches:
            build = DepsBuild(arch, args.lock, args.build_dir, python)
            if build.run(runner, force=args.force):
                print(f"installed Lambda dependencies for {arch} into {build.target}")
            else:
                print(f"Lambda dependencies for {arch} are up to date ({build.target})")
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
