"""Where the project's build inputs and outputs live, without importing the CDK.

The local cloud's Lambda runtime runs the functions from the same asset root as the
stack; importing :mod:`infra.bundling` for that would start jsii's Node process in
every local-cloud process, so the paths have a home of their own.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = REPO_ROOT / "functions"
"""The asset root: our package and its lock (the local cloud's runtime runs from it too)."""
BUILD_DIR = REPO_ROOT / "build"
"""Where ``make build`` installs the Lambda dependencies, one folder per architecture."""
LOCK_NAME = "requirements.lock"
"""The hashed lock of ``functions/requirements.txt`` that ``make build`` installs."""

__all__ = ["BUILD_DIR", "FUNCTIONS_DIR", "LOCK_NAME", "REPO_ROOT"]
