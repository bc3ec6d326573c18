"""The Lambda asset, bundled on this machine: no Docker, nothing downloaded at synth.

``make build`` (:mod:`infra.lambda_deps`) installs the locked runtime dependencies
(``functions/requirements.lock``) for the Lambda platform into
``build/lambda-deps-<arch>``. At synth, CDK calls :meth:`LocalBundler.try_bundle`, which
copies that folder and our ``imgsearch`` package into the asset directory, and writes
our package's bytecode for the Lambda's Python (:mod:`infra.cold_start`). Both
functions share the one asset. ``imgsearch/pricing.py`` stays out: prices serve the
backfill's cost estimate only, and no handler imports them (an import-linter contract
in ``pyproject.toml`` keeps it so).

The asset hash is the fingerprint of the bundled output (``AssetHashType.OUTPUT``):
it changes exactly when what would be deployed changes (code, a dependency, the
architecture), and stays put otherwise, so an unchanged tree deploys no new Lambda
code. (CDK's default hash for a bundled asset mixes in the bundling options, and
those include the jsii proxy of :class:`LocalBundler`, which serialises differently
on each run: every synth would yield a new asset.)
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

from infra.cold_start import compile_command, find_lambda_python
from infra.lambda_deps import LAMBDA_PYTHON_VERSION, STAMP_NAME, DepsBuild
from infra.paths import BUILD_DIR, FUNCTIONS_DIR, LOCK_NAME

PACKAGE = "imgsearch"
LEFT_OUT = frozenset({"pricing.py"})
"""Modules of the package's top level that the Lambdas never import."""
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", STAMP_NAME)
"""What never ships from our package: this machine's bytecode, and the stamp."""
_DEPS_IGNORED = shutil.ignore_patterns(STAMP_NAME)
"""The dependencies ship with the bytecode ``make build`` wrote for the Lambda's Python."""


class BundlingError(RuntimeError):
    """The Lambda dependencies are missing or stale; the message says to run ``make build``."""


@jsii.implements(cdk.ILocalBundling)
class LocalBundler:
    """Copies the pre-installed dependencies and our package into the asset directory."""

    def __init__(
        self,
        arch: str,
        functions_dir: Path = FUNCTIONS_DIR,
        build_dir: Path = BUILD_DIR,
        python: Path | Literal["find"] | None = "find",
    ) -> None:
        """``python`` writes the bytecode (None: none); by default it is looked up."""
        self.functions_dir = functions_dir
        found = lambda_python() if isinstance(python, str) else python
        self.deps = DepsBuild(arch, functions_dir / LOCK_NAME, build_dir, found)

    def check(self) -> None:
        """Fail early, naming the fix, if ``make build`` has not run for these inputs."""
        if not self.deps.target.is_dir():
            raise BundlingError(
                f"Lambda dependencies for {self.deps.arch} are missing ({self.deps.target}); "
                "run `make build` first"
            )
        if not self.deps.is_up_to_date():
            raise BundlingError(
                f"Lambda dependencies in {self.deps.target} do not match "
                f"{self.deps.lock}; run `make build` to reinstall them"
            )

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, *_options: Any, **_kwargs: Any) -> bool:
        self.check()
        out = Path(output_dir)
        shutil.copytree(
            self.deps.target,
            out,
            ignore=_DEPS_IGNORED,
            copy_function=_link_or_copy,
            dirs_exist_ok=True,
        )
        package = self.functions_dir / PACKAGE
        shutil.copytree(package, out / PACKAGE, ignore=_package_ignore(package))
        if self.deps.python is not None:  # `make build` warned already when there is none
            cmd = compile_command(self.deps.python, out / PACKAGE, asset_root=out)
            if subprocess.run(cmd, check=False).returncode != 0:
                raise BundlingError(f"{self.deps.python} could not compile {package}")
        return True


@functools.cache
def lambda_python() -> Path | None:
    """The interpreter that writes the asset's bytecode, looked up once per process."""
    return find_lambda_python(LAMBDA_PYTHON_VERSION)


def _package_ignore(package: Path) -> Callable[[str, list[str]], set[str]]:
    """Bytecode anywhere, and the :data:`LEFT_OUT` modules at the package's top level."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        ignored = set(_IGNORED(directory, names))
        if Path(directory) == package:
            ignored |= LEFT_OUT.intersection(names)
        return ignored

    return ignore


def _link_or_copy(src: str, dst: str) -> str:
    """Hard-link the (read-only, thousands of files) dependencies; copy across devices."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def lambda_code(arch: str) -> lambda_.Code:
    """The asset both functions run from (handler modules under ``imgsearch.handlers``)."""
    bundler = LocalBundler(arch)
    return lambda_.Code.from_asset(
        str(bundler.functions_dir),
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            # Never pulled: the local bundler always bundles or raises. CDK requires an image.
            image=cdk.DockerImage.from_registry("local-bundling-only"),
            local=bundler,
        ),
    )
