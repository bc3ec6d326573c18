"""The hashed locks hold what the requirements files ask for, so no edit goes unlocked.

``make install`` and ``make build`` install only from the locks (``--require-hashes``): a
pin changed in a requirements file without ``make lock`` would silently install the old
version. These checks read the files only (no index), so they run offline.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra.paths import FUNCTIONS_DIR, LOCK_NAME

REPO_ROOT = FUNCTIONS_DIR.parent
DEV_LOCK = REPO_ROOT / "requirements-dev.lock"
LAMBDA_LOCK = FUNCTIONS_DIR / LOCK_NAME
PAIRS = [
    pytest.param(REPO_ROOT / "requirements-dev.txt", DEV_LOCK, id="dev"),
    pytest.param(FUNCTIONS_DIR / "requirements.txt", LAMBDA_LOCK, id="lambda"),
]
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(\S+)")


def _name(raw: str) -> str:
    """PEP 503 normalised name: how pip and uv compare package names."""
    return re.sub(r"[-_.]+", "-", raw).lower()


def _requested(path: Path) -> dict[str, str]:
    """``name==version`` of a requirements file and of the files it includes with ``-r``."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            pins |= _requested(path.parent / line[3:].strip())
        elif line:
            match = _PIN.match(line)
            assert match, f"{path}: {line!r} is not pinned with =="
            pins[_name(match[1])] = match[2]
    return pins


def _locked(path: Path) -> dict[str, dict[str, int]]:
    """Each locked package's versions (a universal lock may split one by Python version by
    markers) and how many hashes the lock lists for each."""
    locked: dict[str, dict[str, int]] = {}
    current: tuple[str, str] | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = (_name(match[1]), match[2])
            locked.setdefault(current[0], {})[current[1]] = 0
        elif line.strip().startswith("--hash=sha256:") and current:
            locked[current[0]][current[1]] += 1
    return locked


@pytest.mark.parametrize(("requirements", "lock"), PAIRS)
def test_the_lock_pins_every_requirement_at_its_version(requirements: Path, lock: Path) -> None:
    locked = _locked(lock)
    stale = {
        name: (version, sorted(locked.get(name, {})))
        for name, version in _requested(requirements).items()
        if version not in locked.get(name, {})
    }
    assert stale == {}, f"run `make lock`: (requested, locked) differ for {stale}"


@pytest.mark.parametrize(("requirements", "lock"), PAIRS)
def test_every_locked_package_carries_hashes(requirements: Path, lock: Path) -> None:
    locked = _locked(lock)
    assert locked, f"{lock} locks nothing"
    unhashed = [
        f"{name}=={version}"
        for name, versions in locked.items()
        for version, hashes in versions.items()
        if hashes == 0
    ]
    assert unhashed == []


def test_the_lambda_ships_the_versions_the_tests_ran_against() -> None:
    dev = _locked(DEV_LOCK)
    differ = {
        name: (sorted(versions), sorted(dev[name]))
        for name, versions in _locked(LAMBDA_LOCK).items()
        if name in dev and not set(versions) <= set(dev[name])
    }
    assert differ == {}, f"(Lambda, dev) versions differ: {differ}; run `make lock`"


def test_a_stale_lock_is_named(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("boto3==1.44.9  # bumped\n")
    (tmp_path / "req.txt").write_text("-r base.txt\nrich==15.0.0\n")
    (tmp_path / "req.lock").write_text(
        "boto3==1.44.8 \\\n    --hash=sha256:aa\nrich==15.0.0 \\\n    --hash=sha256:bb\n"
    )
    assert _requested(tmp_path / "req.txt") == {"boto3": "1.44.9", "rich": "15.0.0"}
    assert _locked(tmp_path / "req.lock") == {"boto3": {"1.44.8": 1}, "rich": {"15.0.0": 1}}
    with pytest.raises(
        AssertionError, match=r"run `make lock`.*'boto3': \('1.44.9', \['1.44.8'\]\)"
    ):
        test_the_lock_pins_every_requirement_at_its_version(
            tmp_path / "req.txt", tmp_path / "req.lock"
        )
