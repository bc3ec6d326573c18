"""Every test process uses the project's pinned Node, as ``make`` does.

CDK's jsii runtime (infra tests) starts whichever ``node`` is first on PATH; run as
``.venv/bin/python -m pytest`` without make, that would be the machine's own, which may
be an end-of-life release. The local SQS (fauxqs) finds the pinned Node by itself.
"""

from __future__ import annotations

import os

from infra.paths import REPO_ROOT

_PINNED_BIN = REPO_ROOT / "node_modules" / ".bin"
if _PINNED_BIN.is_dir() and str(_PINNED_BIN) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([str(_PINNED_BIN), os.environ.get("PATH", "")])
