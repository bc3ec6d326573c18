"""The asset's cold-start work done at build time: botocore's data for our services only,
bytecode for the Lambda's Python, and the interpreter that writes it."""

from __future__ import annotations

import json
import marshal
import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from botocore.loaders import Loader

from imgsearch.blueprint import LAMBDA_AWS_SERVICES
from infra.bundling import LocalBundler
from infra.cold_start import find_lambda_python, prune_botocore_data
from infra.lambda_deps import LAMBDA_PYTHON_VERSION, DepsBuild, deps_dir
from infra.paths import FUNCTIONS_DIR, LOCK_NAME


def _botocore_tree(root: Path, services: tuple[str, ...]) -> Path:
    data = root / "botocore" / "data"
    for name in services:
        (data / name / "2020-01-01").mkdir(parents=True)
        (data / name / "2020-01-01" / "service-2.json").write_text("{}")
    (data / "_retry.json").write_text("{}")
    partition = {"partition": "aws", "services": {n: {"endpoints": {}} for n in services}}
    (data / "endpoints.json").write_text(json.dumps({"partitions": [partition], "version": 3}))
    return data


def test_prune_keeps_only_the_named_services_and_their_endpoints(tmp_path: Path) -> None:
    data = _botocore_tree(tmp_path, ("s3", "sqs", "ec2", "iam"))
    prune_botocore_data(tmp_path, ("s3", "sqs"))
    assert sorted(p.name for p in data.iterdir()) == [
        "_retry.json",
        "endpoints.json",
        "s3",
        "sqs",
    ]
    (partition,) = json.loads((data / "endpoints.json").read_text())["partitions"]
    assert sorted(partition["services"]) == ["s3", "sqs"]


def test_prune_refuses_a_service_botocore_does_not_have(tmp_path: Path) -> None:
    _botocore_tree(tmp_path, ("s3",))
    with pytest.raises(ValueError, match=r"no data for s3vectors"):
        prune_botocore_data(tmp_path, ("s3", "s3vectors"))
    assert (tmp_path / "botocore" / "data" / "s3").is_dir()  # nothing removed before the check


def test_the_built_asset_loads_each_kept_service_model_and_ships_bytecode() -> None:
    """What `make build` wrote (the tests run after it): the pruned data still loads."""
    data = deps_dir("x86_64") / "botocore" / "data"
    if not data.is_dir():
        pytest.skip("run `make build` first")
    loader = Loader(extra_search_paths=[str(data)], include_default_search_paths=False)
    assert sorted(loader.list_available_services("service-2")) == sorted(LAMBDA_AWS_SERVICES)
    for name in LAMBDA_AWS_SERVICES:
        assert loader.load_service_model(name, "service-2")["metadata"]
    python = find_lambda_python(LAMBDA_PYTHON_VERSION)
    if python is None:
        pytest.skip(f"no Python {LAMBDA_PYTHON_VERSION} here: the asset has no bytecode")
    assert DepsBuild("x86_64", FUNCTIONS_DIR / LOCK_NAME, python=python).is_up_to_date()
    tag = f"cpython-{LAMBDA_PYTHON_VERSION.replace('.', '')}"
    assert (deps_dir("x86_64") / "botocore" / "__pycache__" / f"__init__.{tag}.pyc").is_file()


def _fake_python(path: Path, version: str) -> Path:
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_find_lambda_python_checks_the_version_each_candidate_reports(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_python(bin_dir / "python3.13", "3.11")  # a shim for another version
    good = _fake_python(tmp_path / "py313", "3.13")
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path)}
    assert find_lambda_python("3.13", env) is None
    assert find_lambda_python("3.13", env | {"IMGSEARCH_LAMBDA_PYTHON": str(good)}) == good
    pyenv = tmp_path / ".pyenv" / "versions" / "3.13.5" / "bin"
    pyenv.mkdir(parents=True)
    found = _fake_python(pyenv / "python3", "3.13")
    assert find_lambda_python("3.13", env) == found


def test_bundling_compiles_our_package_with_the_lambda_python(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    (functions / "imgsearch").mkdir(parents=True)
    (functions / "imgsearch" / "__init__.py").write_text("X = 1\n")
    (functions / LOCK_NAME).write_text("boto3==1.44.8 --hash=sha256:00\n")
    python = Path(sys.executable)  # stands in for the Lambda's Python: any compileall does

    def pip(cmd: Sequence[str]) -> int:
        if "compileall" in cmd:
            assert cmd[cmd.index("--invalidation-mode") + 1] == "unchecked-hash"
            return os.spawnv(os.P_WAIT, cmd[0], list(cmd))
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "dep").mkdir(parents=True)
        (target / "dep" / "__init__.py").write_text("")
        return 0

    DepsBuild("arm64", functions / LOCK_NAME, tmp_path / "build", python).run(pip)
    out = tmp_path / "asset"
    LocalBundler("arm64", functions, tmp_path / "build", python=python).try_bundle(str(out))
    tag = sys.implementation.cache_tag
    assert (out / "dep" / "__pycache__" / f"__init__.{tag}.pyc").is_file()
    ours = out / "imgsearch" / "__pycache__" / f"__init__.{tag}.pyc"
    # the path Lambda will have, not this machine's temporary folder
    assert marshal.loads(ours.read_bytes()[16:]).co_filename == "/var/task/imgsearch/__init__.py"
    again = tmp_path / "again"
    LocalBundler("arm64", functions, tmp_path / "build", python=python).try_bundle(str(again))
    assert (again / ours.relative_to(out)).read_bytes() == ours.read_bytes()  # a stable hash
