"""The deployed settings win over the local ones: a script behaves as the deployed stack does.

The stack publishes the settings its Lambdas run with (``DeployedConfig``, the fields of
:data:`imgsearch.blueprint.DEPLOYED_FIELDS`). A script that computed ``MessageGroupId``
from another ``message_groups`` than the router's would let two messages of one object
run at once, and an older ETag could be written last. So, when the stack is readable,
those fields come from it and replace the repository's ``cdk.json`` (and the defaults).
A value the operator gave on purpose for this run (``-c key=value``, or a key of the
file named by ``--cdk-json`` / ``$IMGSEARCH_CDK_JSON``) that differs is refused, naming
the key and both values: silently dropping it would be as wrong as using it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from imgsearch.blueprint import DEPLOYED_FIELDS
from imgsearch.config import PipelineConfig
from scripts.common.cli import parse_context
from scripts.common.errors import CliError


def given_settings(args: argparse.Namespace) -> dict[str, str]:
    """``{config key: where the operator gave it}`` for this run's deliberate settings.

    ``-c`` pairs, and the context keys of a cdk.json named by ``--cdk-json`` or
    ``$IMGSEARCH_CDK_JSON``. The repository's own cdk.json is not a deliberate choice:
    the deployed values replace it.
    """
    given: dict[str, str] = {}
    path = getattr(args, "cdk_json", None) or os.environ.get("IMGSEARCH_CDK_JSON")
    if path and os.path.isfile(path):
        try:
            context = json.loads(Path(path).read_text(encoding="utf-8")).get("context", {})
        except (ValueError, AttributeError):
            context = {}  # config_from_args already reported a bad file
        for key in context if isinstance(context, dict) else ():
            given[key] = path
    for key in parse_context(getattr(args, "context", None) or []):
        given[key] = "-c"
    return given


def apply_deployed(
    cfg: PipelineConfig,
    deployed: Mapping[str, Any],
    given: Mapping[str, str],
    *,
    exempt: Collection[str] = (),
) -> tuple[PipelineConfig, list[str]]:
    """``cfg`` with the deployed values, and notes on what they replaced.

    Raises :class:`CliError` naming every key whose deliberate local value (``given``)
    differs from the deployed one. ``exempt`` keys are neither checked nor replaced.
    """
    conflicts: list[str] = []
    notes: list[str] = []
    changes: dict[str, Any] = {}
    for key in DEPLOYED_FIELDS:
        if key not in deployed or key in exempt:
            continue
        local, remote = getattr(cfg, key), deployed[key]
        if local == remote:
            continue
        source = given.get(key)
        if source is not None:
            drop = f"-c {key}" if source == "-c" else f"{key} from {source}"
            conflicts.append(
                f"{key}: deployed {_show(remote)}, local {_show(local)}; drop {drop} or redeploy"
            )
            continue
        changes[key] = remote
        notes.append(f"{key}: using the deployed {_show(remote)} (local config: {_show(local)})")
    if conflicts:
        raise CliError("the local config differs from the deployed stack: " + "; ".join(conflicts))
    return (cfg.replace(**changes) if changes else cfg), notes


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return json.dumps(list(value), ensure_ascii=False, separators=(",", ":"))
    return str(value)


__all__ = ["apply_deployed", "given_settings"]
