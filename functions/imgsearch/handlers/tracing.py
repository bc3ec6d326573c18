"""The handlers' X-Ray tracing: Powertools' Tracer where tracing is on, nothing elsewhere.

Powertools' ``Tracer`` imports the X-Ray SDK (a sixth of a cold start) even when it is
disabled, and still opens a dummy subsegment per invocation. Where Powertools would
disable it (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda: the local cloud, tests),
the handlers get a pass-through decorator and ``aws_xray_sdk`` is never imported. The
stack sets ``POWERTOOLS_TRACE_DISABLED`` unless ``tracing=true``; with active tracing
Powertools' Tracer runs as usual.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Tracer  # its X-Ray SDK import is lazy until built
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

F = TypeVar("F", bound=Callable[..., Any])


def tracing_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """Powertools' own rule: on in Lambda unless disabled, off in SAM/Chalice local runs."""
    if resolve_truthy_env_var_choice(env=env.get(constants.TRACER_DISABLED_ENV, "false")):
        return False
    local = env.get(constants.SAM_LOCAL_ENV) or env.get(constants.CHALICE_LOCAL_ENV)
    return bool(env.get(constants.LAMBDA_TASK_ROOT_ENV)) and not local


def lambda_tracer(service: str) -> Callable[[F], F]:
    """The decorator for a handler: Powertools' ``capture_lambda_handler``, or identity."""
    if not tracing_enabled():
        return _untraced
    # Patch only botocore (all we call): the default patches every library X-Ray knows
    # that is importable (http.client, sqlite3, ...), which costs cold-start time.
    tracer = Tracer(service=service, patch_modules=("botocore",))

    def traced(handler: F) -> F:
        return cast(F, tracer.capture_lambda_handler(handler))

    return traced


def _untraced(handler: F) -> F:
    return handler
