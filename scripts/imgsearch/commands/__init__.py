"""One module per ``imgsearch`` command: each adds its subparser and runs it on a Context.

A command module has ``register(sub, common)``, which adds its subparser (with the
shared options of ``common``) and sets ``run``, the function :func:`scripts.imgsearch.cli.main`
calls with the :class:`~scripts.imgsearch.context.Context` and whose result is the exit code.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
