"""One local Lambda execution environment (runs as a child process).

``python -m localcloud.lambdas.worker <module.function> <function-name> <timeout-s> <memory-mb>``

Like a Lambda container it imports the handler once (the init phase), then serves one
invocation at a time: an event arrives as one JSON line on stdin, the handler runs with a
Lambda-like context, and the answer goes back on stdout as a control line that starts
with ``\\x1e`` (ASCII record separator). Everything else the handler writes to stdout is
its log, exactly as in Lambda, where the parent reads it for the per-object accounting
and the EMF metrics. The process exits when stdin closes (its parent went away).

This module must stay importable without the local cloud's own dependencies: the child
runs the production handler with only what the Lambda would have.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

CONTROL = "\x1e"


class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools use."""

    def __init__(self, name: str, memory_mb: int, request_id: str, deadline: float) -> None:
        region = os.environ.get("AWS_REGION", "us-east-1")
        account = os.environ.get("LOCALCLOUD_ACCOUNT_ID", "123456789012")
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _control(payload: dict[str, Any]) -> None:
    sys.stdout.flush()
    sys.stdout.write("\n" + CONTROL + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def main(argv: list[str]) -> int:
    handler_path, name, timeout_s, memory_mb = argv[0], argv[1], float(argv[2]), int(argv[3])
    module_name, _, func_name = handler_path.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:
        traceback.print_exc(file=sys.stdout)
        _control({"lc": "init_error", "error": _error(exc)})
        return 1
    _control({"lc": "ready", "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        request_id = request["id"]
        deadline = time.monotonic() + timeout_s
        context = LambdaContext(name, memory_mb, request_id, deadline)
        started = time.perf_counter()
        try:
            result = handler(request["event"], context)
            reply = {"lc": "result", "id": request_id, "ok": True, "payload": result}
        except Exception as exc:
            print(
                json.dumps({"level": "ERROR", "message": f"[ERROR] {type(exc).__name__}: {exc}"}),
                flush=True,
            )
            reply = {"lc": "result", "id": request_id, "ok": False, "error": _error(exc)}
        reply["duration_ms"] = round((time.perf_counter() - started) * 1000, 2)
        try:
            _control(reply)
        except (TypeError, ValueError) as exc:  # the handler returned something not JSON
            _control({"lc": "result", "id": request_id, "ok": False, "error": _error(exc)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
