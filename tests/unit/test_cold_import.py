"""What importing a handler pulls in: the cold start pays for every module it imports.

Each case imports one handler in a fresh interpreter with the environment the stack
sets, then reports which of the heavy optional modules got imported. No timing here
(``bench.bench_embedder`` prints the figures); only which code a cold start runs.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest

from imgsearch.blueprint import LAMBDA_AWS_SERVICES
from imgsearch.config import PipelineConfig
from infra.paths import FUNCTIONS_DIR

HANDLERS = ("imgsearch.handlers.embedder", "imgsearch.handlers.router", "imgsearch.handlers.search")
HEAVY = ("boto3", "s3transfer", "aws_xray_sdk", "aws_xray_sdk.core")

_PROBE = """
import importlib, json, sys
module = importlib.import_module(sys.argv[1])
heavy = [name for name in json.loads(sys.argv[2]) if name in sys.modules]
import botocore.client
# X-Ray patches botocore by wrapping BaseClient._make_api_call in a wrapt proxy.
patched = type(vars(botocore.client.BaseClient)["_make_api_call"]).__name__ == "FunctionWrapper"
services = sorted(
    v.meta.service_model.service_name
    for v in vars(module).values()
    if isinstance(v, botocore.client.BaseClient)
)
print(json.dumps({"heavy": heavy, "botocore_traced": patched, "services": services}))
"""


def _imported(module: str, *, tracing: bool = False, **env: str) -> dict[str, object]:
    """Import ``module`` in a fresh interpreter (the Lambda environment plus ``env``)."""
    cfg = PipelineConfig(queue_url="https://sqs.us-east-1.amazonaws.com/1/q.fifo", tracing=tracing)
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    full |= cfg.to_lambda_env() | {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_TASK_ROOT": str(FUNCTIONS_DIR),
        "AWS_LAMBDA_FUNCTION_NAME": "imgsearch-cold-import-test",
    }
    full |= env
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, module, json.dumps(HEAVY)],
        env=full,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("module", HANDLERS)
def test_handlers_build_clients_without_boto3(module: str) -> None:
    """boto3 adds s3transfer (and its multiprocessing imports) for methods we never call."""
    heavy = _imported(module)["heavy"]
    assert isinstance(heavy, list)
    assert "boto3" not in heavy
    assert "s3transfer" not in heavy


@pytest.mark.parametrize("module", HANDLERS)
def test_handlers_call_only_services_whose_botocore_data_the_asset_keeps(module: str) -> None:
    """The asset ships botocore's data for LAMBDA_AWS_SERVICES only (infra.cold_start)."""
    services = _imported(module)["services"]
    assert isinstance(services, list) and services
    assert set(services) <= set(LAMBDA_AWS_SERVICES), services


def test_every_client_the_lambda_code_creates_is_for_a_service_the_asset_keeps() -> None:
    """Also clients created later than import: every ``create_client("<service>", ...)``
    under functions/ names a literal service among LAMBDA_AWS_SERVICES."""
    found: dict[str, str] = {}
    for path in sorted(FUNCTIONS_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("create_client", "client")
            ):
                first = node.args[0] if node.args else None
                assert isinstance(first, ast.Constant) and isinstance(first.value, str), (
                    f"{path.name}:{node.lineno}: a client for a service named at run time"
                )
                found[f"{path.name}:{node.lineno}"] = first.value
    assert found, "no client found: the scan is looking in the wrong place"
    assert set(found.values()) <= set(LAMBDA_AWS_SERVICES), found


@pytest.mark.parametrize("module", HANDLERS)
def test_tracing_disabled_does_not_import_the_xray_sdk(module: str) -> None:
    """With tracing off (the default: the stack sets POWERTOOLS_TRACE_DISABLED), nothing of
    X-Ray is loaded in Lambda either."""
    result = _imported(module)
    heavy = result["heavy"]
    assert isinstance(heavy, list)
    assert not [name for name in heavy if name.startswith("aws_xray_sdk")]
    assert result["botocore_traced"] is False


@pytest.mark.parametrize("module", HANDLERS)
def test_tracing_on_in_lambda_still_traces_botocore(module: str) -> None:
    """In Lambda with active tracing (``tracing=true``) botocore calls stay traced."""
    result = _imported(module, tracing=True)
    heavy = result["heavy"]
    assert isinstance(heavy, list)
    assert "aws_xray_sdk.core" in heavy
    assert result["botocore_traced"] is True


def test_outside_lambda_tracing_is_off() -> None:
    """Powertools disables tracing outside Lambda; so do we, without importing X-Ray."""
    result = _imported(HANDLERS[0], tracing=True, LAMBDA_TASK_ROOT="")
    heavy = result["heavy"]
    assert isinstance(heavy, list)
    assert "aws_xray_sdk.core" not in heavy
