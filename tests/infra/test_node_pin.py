"""The Node the project pins (package.json) is a supported LTS, locked and installed.

``make`` puts ``node_modules/.bin`` first on PATH, and CDK's jsii runtime and the local
SQS run on that ``node``; an end-of-life release makes every CDK import print a warning
banner (and, later, stop getting security fixes). These checks fail if the pin regresses
below a supported LTS line, or if the lock or the install drift from it.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from infra.paths import REPO_ROOT

OLDEST_SUPPORTED_LTS = 22
"""Node 20 reached end of life in April 2026; 22 and 24 are the maintained LTS lines."""

PINNED_NODE = REPO_ROOT / "node_modules" / ".bin" / "node"
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def pinned_version() -> str:
    """The exact ``node`` version package.json asks for."""
    package = json.loads((REPO_ROOT / "package.json").read_text(encoding="utf-8"))
    return str(package["devDependencies"]["node"])


def lts_problem(version: str) -> str | None:
    """Why ``version`` is not an exact pin of a supported LTS release, or None."""
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        return f"node {version!r} is not an exact x.y.z pin"
    major = int(match[1])
    if major % 2:
        return f"node {version} is an odd (current, never LTS) line; pin an even one"
    if major < OLDEST_SUPPORTED_LTS:
        return f"node {version} is end-of-life; pin an LTS of {OLDEST_SUPPORTED_LTS} or later"
    return None


def test_the_pinned_node_is_a_supported_lts() -> None:
    assert lts_problem(pinned_version()) is None


def test_the_lock_resolves_the_pinned_node() -> None:
    lock = json.loads((REPO_ROOT / "package-lock.json").read_text(encoding="utf-8"))
    locked = lock["packages"]["node_modules/node"]["version"]
    assert locked == pinned_version(), "package.json and package-lock.json differ: npm install"


def test_the_installed_node_is_the_pinned_one() -> None:
    if not PINNED_NODE.exists():
        pytest.skip("node_modules is not installed (make install)")
    shown = subprocess.run(
        [str(PINNED_NODE), "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    assert shown == f"v{pinned_version()}", "node_modules is stale: run make install"


@pytest.mark.parametrize(
    ("version", "problem"),
    [
        ("20.20.2", "end-of-life"),
        ("23.11.0", "odd"),
        ("^24.0.0", "exact"),
        ("22.22.0", None),
        ("24.21.0", None),
    ],
)
def test_a_regressed_pin_is_named(version: str, problem: str | None) -> None:
    found = lts_problem(version)
    assert (found is None) if problem is None else (problem in str(found))
