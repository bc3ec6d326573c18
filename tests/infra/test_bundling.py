"""The Lambda asset is bundled locally from ``make build``'s folder: no Docker, no download."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from infra.bundling import BundlingError, LocalBundler, lambda_python
from infra.lambda_deps import LAMBDA_PYTHON_VERSION, STAMP_NAME, DepsBuild
from infra.paths import FUNCTIONS_DIR, LOCK_NAME
from tests.infra.conftest import Synth, SynthFn


def _fake_pip(cmd: Sequence[str]) -> int:
    target = Path(cmd[cmd.index("--target") + 1])
    (target / "boto3").mkdir(parents=True)
    (target / "boto3" / "__init__.py").write_text("# boto3\n")
    return 0


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """A functions/ folder with our package (and bytecode litter) and an empty build/."""
    functions = tmp_path / "functions"
    (functions / "imgsearch" / "handlers").mkdir(parents=True)
    (functions / "imgsearch" / "__init__.py").write_text("")
    (functions / "imgsearch" / "handlers" / "router.py").write_text("def lambda_handler(): ...\n")
    (functions / "imgsearch" / "pricing.py").write_text("PRICES = {}\n")  # estimates only
    (functions / "imgsearch" / "__pycache__").mkdir()
    (functions / "imgsearch" / "__pycache__" / "x.cpython-313.pyc").write_bytes(b"\0")
    (functions / LOCK_NAME).write_text("boto3==1.44.8 --hash=sha256:00\n")
    return functions, tmp_path / "build"


def test_bundle_holds_the_dependencies_and_our_package_without_the_prices(
    tree: tuple[Path, Path], tmp_path: Path
) -> None:
    functions, build = tree
    DepsBuild("arm64", functions / LOCK_NAME, build).run(_fake_pip)
    out = tmp_path / "asset"
    out.mkdir()
    assert LocalBundler("arm64", functions, build, python=None).try_bundle(str(out)) is True
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == {
        "boto3/__init__.py",
        "imgsearch/__init__.py",
        "imgsearch/handlers/router.py",
    }


def test_missing_dependencies_say_run_make_build(tree: tuple[Path, Path], tmp_path: Path) -> None:
    functions, build = tree
    with pytest.raises(BundlingError, match=r"missing .*lambda-deps-x86_64.*run `make build`"):
        LocalBundler("x86_64", functions, build, python=None).try_bundle(str(tmp_path))


def test_stale_dependencies_say_run_make_build(tree: tuple[Path, Path], tmp_path: Path) -> None:
    functions, build = tree
    DepsBuild("arm64", functions / LOCK_NAME, build).run(_fake_pip)
    (functions / LOCK_NAME).write_text("boto3==1.44.9 --hash=sha256:01\n")
    with pytest.raises(BundlingError, match=r"do not match .*requirements.lock; run `make build`"):
        LocalBundler("arm64", functions, build, python=None).try_bundle(str(tmp_path))


def _asset_dir(synthesized: Synth, function: Any) -> Path:
    fn = synthesized.raw["Resources"][synthesized.logical_id(function)]
    key = fn["Properties"]["Code"]["S3Key"]
    return synthesized.outdir / f"asset.{key.removesuffix('.zip')}"


def test_synthesized_asset_runs_both_handlers_with_the_platforms_dependencies(
    synth: SynthFn,
) -> None:
    for overrides, machine in (({}, "aarch64"), ({"architecture": "x86_64"}, "x86_64")):
        synthesized = synth(**overrides)
        functions = synthesized.stack.pipeline.functions
        asset = _asset_dir(synthesized, functions.embedder)
        assert asset == _asset_dir(synthesized, functions.router)  # one shared asset
        for handler in ("router", "embedder"):
            assert (asset / "imgsearch" / "handlers" / f"{handler}.py").read_bytes() == (
                FUNCTIONS_DIR / "imgsearch" / "handlers" / f"{handler}.py"
            ).read_bytes()
        for package in ("boto3", "botocore", "aws_lambda_powertools", "aws_xray_sdk"):
            assert (asset / package / "__init__.py").is_file(), package
        compiled = {p.name for p in asset.rglob("*.so")}
        assert compiled, "expected wrapt's compiled extension"
        assert all(f"cpython-313-{machine}-linux-gnu" in name for name in compiled), compiled
        # bytecode only for the Lambda's Python (infra.cold_start), never this machine's
        tags = {p.name.split(".")[-2] for p in asset.rglob("*.pyc")}
        assert tags <= {f"cpython-{LAMBDA_PYTHON_VERSION.replace('.', '')}"}, tags
        if lambda_python() is not None:
            assert (asset / "imgsearch" / "handlers" / "__pycache__").is_dir()
        assert not list(asset.rglob(STAMP_NAME))
        assert (FUNCTIONS_DIR / "imgsearch" / "pricing.py").is_file()
        assert not (asset / "imgsearch" / "pricing.py").exists()  # prices are for estimates only


def test_asset_manifest_needs_no_docker(synth: SynthFn) -> None:
    synthesized = synth()
    manifest = json.loads(
        (synthesized.outdir / f"{synthesized.stack.artifact_id}.assets.json").read_text()
    )
    assert manifest.get("dockerImages", {}) == {}
    # the template itself, and the one Lambda asset (a folder, zipped at deploy time)
    zipped = [a for a in manifest["files"].values() if a["source"].get("packaging") == "zip"]
    assert [a["source"]["path"] for a in zipped] == [
        _asset_dir(synthesized, synthesized.stack.pipeline.functions.embedder).name
    ]
