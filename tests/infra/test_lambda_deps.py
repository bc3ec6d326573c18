"""``python -m infra.lambda_deps``: installs the lock once per set of inputs, never half-way.

pip is the network edge: a fake runner stands in for it and writes what pip would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from infra.lambda_deps import STAMP_NAME, BuildError, DepsBuild, main


class FakePip:
    def __init__(self, status: int = 0) -> None:
        self.status = status
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str]) -> int:
        self.calls.append(list(cmd))
        if "compileall" in cmd:
            return 0
        target = Path(cmd[cmd.index("--target") + 1])
        (target / "boto3").mkdir(parents=True)
        (target / "boto3" / "__init__.py").write_text("# boto3\n")
        (target / "bin").mkdir()
        (target / "bin" / "jp.py").write_text("#!/this/machine/python\n")
        return self.status


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "requirements.lock"
    path.write_text("boto3==1.44.8 --hash=sha256:00\n")
    return path


def test_installs_the_locked_manylinux_wheels_for_the_lambda_python_into_the_arch_folder(
    tmp_path: Path, lock: Path
) -> None:
    pip = FakePip()
    build = DepsBuild("arm64", lock, tmp_path / "build")
    assert build.run(pip) is True
    (cmd,) = pip.calls
    assert cmd[1:4] == ["-m", "pip", "install"]
    for flag in (
        "--only-binary=:all:",
        "--require-hashes",
        "--no-deps",
        "--implementation cp",
        "--python-version 3.13",
        "--platform manylinux2014_aarch64",
        f"-r {lock}",
    ):
        assert flag in " ".join(cmd), flag
    assert "x86_64" not in " ".join(cmd)
    assert build.target == tmp_path / "build" / "lambda-deps-arm64"
    assert (build.target / "boto3" / "__init__.py").is_file()
    assert not (build.target / "bin").exists()  # console scripts carry this machine's paths
    assert (build.target / STAMP_NAME).read_text().strip() == build.expected_stamp()
    assert not build.target.with_name("lambda-deps-arm64.tmp").exists()


def test_second_run_with_the_same_inputs_does_nothing(tmp_path: Path, lock: Path) -> None:
    build = DepsBuild("x86_64", lock, tmp_path)
    build.run(FakePip())
    again = FakePip()
    assert build.run(again) is False
    assert again.calls == []
    assert build.run(again, force=True) is True
    assert len(again.calls) == 1


def test_changed_lock_reinstalls_from_scratch(tmp_path: Path, lock: Path) -> None:
    build = DepsBuild("arm64", lock, tmp_path)
    build.run(FakePip())
    (build.target / "leftover.py").write_text("")
    lock.write_text("boto3==1.44.9 --hash=sha256:01\n")
    assert build.is_up_to_date() is False
    assert build.run(FakePip()) is True
    assert build.is_up_to_date() is True
    assert not (build.target / "leftover.py").exists()


def test_failed_install_leaves_no_folder_that_looks_finished(tmp_path: Path, lock: Path) -> None:
    build = DepsBuild("arm64", lock, tmp_path)
    build.run(FakePip())
    lock.write_text("boto3==1.44.9 --hash=sha256:02\n")
    with pytest.raises(BuildError, match=r"pip failed \(exit 1\).*arm64.*manylinux wheel.*hash"):
        build.run(FakePip(status=1))
    assert build.is_up_to_date() is False  # the old folder stays, but is not taken as current
    assert not build.target.with_name("lambda-deps-arm64.tmp").exists()


def test_unknown_architecture_and_missing_lock_are_named(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"unknown architecture 'aarch64'.*arm64, x86_64"):
        DepsBuild("aarch64", tmp_path / "requirements.lock")
    with pytest.raises(BuildError, match=r"lock file not found \(`make lock` writes it\)"):
        DepsBuild("arm64", tmp_path / "missing.txt", tmp_path).run(FakePip())


def test_cli_builds_every_architecture_and_reports(
    tmp_path: Path, lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build_dir = tmp_path / "build"
    args = ["--lock", str(lock), "--build-dir", str(build_dir)]
    assert main(args, runner=FakePip()) == 0
    assert {p.name for p in build_dir.iterdir()} == {"lambda-deps-arm64", "lambda-deps-x86_64"}
    assert main([*args, "--arch", "arm64"], runner=FakePip()) == 0
    out = capsys.readouterr().out
    assert "installed Lambda dependencies for x86_64" in out
    assert "Lambda dependencies for arm64 are up to date" in out


def test_cli_failure_is_one_line_on_stderr(
    tmp_path: Path, lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--lock", str(lock), "--build-dir", str(tmp_path)]
    assert main(args, runner=FakePip(status=2)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: pip failed (exit 2)")
    assert err.count("\n") == 1


def test_bytecode_is_written_with_the_lambda_python_or_its_absence_is_said(
    tmp_path: Path, lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pip = FakePip()
    python = Path("/opt/python3.13")
    with_bytecode = DepsBuild("arm64", lock, tmp_path / "a", python)
    with_bytecode.run(pip)
    _install, compile_ = pip.calls
    assert compile_ == [
        str(python), "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash",
        "-s", str(with_bytecode.target) + ".tmp", "-p", "/var/task",  # Lambda's paths
        str(with_bytecode.target) + ".tmp",
    ]  # fmt: skip
    assert capsys.readouterr().err == ""
    without = DepsBuild("arm64", lock, tmp_path / "b")
    without.run(FakePip())
    assert "no Python 3.13 found" in capsys.readouterr().err
    assert without.expected_stamp() != with_bytecode.expected_stamp()  # a later 3.13 rebuilds
