"""The stack's functions, running on the local cloud the way Lambda runs them.

:class:`LambdaRuntime` starts warm execution environments of the router and the
embedder (:class:`~localcloud.lambdas.pool.FunctionPool`) with the environment the
stack gives them, S3's asynchronous invocations of the router (with its on-failure
dead-letter queue), the FIFO queue's event source mapping for the embedder, the
search function behind its HTTP API (:mod:`localcloud.services.http_api`; started
cold, on the first request, as Lambda does), and the delivery of their logs and EMF
metrics to CloudWatch.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.credentials import Credentials
from werkzeug.serving import BaseWSGIServer

from imgsearch.config import PipelineConfig
from imgsearch.contract import SEARCH_HANDLER
from localcloud.lambdas.async_invoke import AsyncInvoker
from localcloud.lambdas.event_source import SqsEventSource
from localcloud.lambdas.pool import FunctionPool, FunctionSpec
from localcloud.provision import ProvisionedStack
from localcloud.services.front import ACCOUNT_ID
from localcloud.services.http_api import HttpApi, serve
from localcloud.telemetry.cloudwatch_feed import LogsForwarder
from localcloud.telemetry.emf import MetricsForwarder
from localcloud.telemetry.logs import LogRecorder

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sqs import SQSClient

ROUTER_CONCURRENCY = 2
"""Warm router environments (the router has no reserved concurrency in the stack)."""
SEARCH_CONCURRENCY = 2
"""Search environments at most (started on demand)."""
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")
"""Variables of this process a function also sees (the rest is the Lambda's own)."""


@dataclass(frozen=True)
class ClientFactories:
    """New boto3 clients aimed at the local cloud, one per thread that needs its own."""

    sqs: Callable[[], SQSClient]
    cloudwatch: Callable[[], CloudWatchClient]
    logs: Callable[[], CloudWatchLogsClient]


def lambda_environment(cfg: PipelineConfig, cloud_env: dict[str, str]) -> dict[str, str]:
    """What both functions' environments share: the stack's config and the cloud's address."""
    env = {k: os.environ[k] for k in _KEPT_ENV if k in os.environ}
    env.update(cfg.to_lambda_env())
    env.update(cloud_env)
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_EXECUTION_ENV="AWS_Lambda_python3.13",
        POWERTOOLS_TRACE_DISABLED="true",
        LOCALCLOUD_ACCOUNT_ID=ACCOUNT_ID,
    )
    return env


def function_spec(
    name: str, handler: str, timeout: int, memory: int, env: dict[str, str]
) -> FunctionSpec:
    """One function's settings, with the variables Lambda sets per function."""
    return FunctionSpec(
        name,
        handler,
        float(timeout),
        memory,
        {
            **env,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        },
    )


class LambdaRuntime:
    """The router and the embedder, wired to the local cloud (see the module docstring)."""

    def __init__(
        self,
        cfg: PipelineConfig,
        stack: ProvisionedStack,
        env: dict[str, str],
        logs: LogRecorder,
        clients: ClientFactories,
        *,
        router_handler: str,
        embedder_handler: str,
    ) -> None:
        self.cfg, self.stack, self._logs, self._clients = cfg, stack, logs, clients
        self._router_dlq_client: SQSClient | None = None
        self._dlq_lock = threading.Lock()
        functions = (stack.router_function, stack.embedder_function)
        self.log_feed = LogsForwarder(
            clients.logs,
            (*functions, stack.search_function) if stack.search_function else functions,
        )
        """Function logs -> CloudWatch Logs ``/aws/lambda/<name>``, as Lambda delivers them."""
        self.router = FunctionPool(
            function_spec(
                stack.router_function,
                router_handler,
                cfg.router_timeout_seconds,
                cfg.router_memory_mb,
                env,
            ),
            ROUTER_CONCURRENCY,
            self._log_sink,
        )
        self.embedder = FunctionPool(
            function_spec(
                stack.embedder_function,
                embedder_handler,
                cfg.embedder_timeout_seconds,
                cfg.embedder_memory_mb,
                env,
            ),
            cfg.embedder_concurrency,
            self._log_sink,
        )
        self.search: FunctionPool | None = None
        self.search_api: HttpApi | None = None
        """The search function's HTTP API (None with ``search_api=false``)."""
        self._search_server: BaseWSGIServer | None = None
        if stack.search_function:
            self.search = FunctionPool(
                function_spec(
                    stack.search_function,
                    SEARCH_HANDLER,
                    cfg.search_timeout_seconds,
                    cfg.search_memory_mb,
                    env,
                ),
                SEARCH_CONCURRENCY,
                self._log_sink,
            )
            self.search_api = HttpApi(
                cfg,
                self._invoke_search,
                Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]),
                account_id=ACCOUNT_ID,
            )
        self.s3_events: AsyncInvoker | None = None
        self.event_source: SqsEventSource | None = None
        self.metrics: MetricsForwarder | None = None
        self._intake_stopped = False

    def start(self) -> None:
        """Warm both functions, then start taking S3 events and polling the queue."""
        cfg, stack = self.cfg, self.stack
        warmers = [
            threading.Thread(target=pool.warm, daemon=True) for pool in (self.router, self.embedder)
        ]
        for t in warmers:
            t.start()
        for t in warmers:
            t.join()
        self.s3_events = AsyncInvoker(
            self.router,
            workers=ROUTER_CONCURRENCY,
            retry_delay=min(1.0, cfg.visibility_timeout_seconds / 4 or 0.25),
            on_failure=self._router_failed,
        )
        self.event_source = SqsEventSource(
            self._clients.sqs,
            stack.queue_url,
            stack.queue_arn,
            stack.region,
            self.embedder,
            batch_size=cfg.batch_size,
            max_concurrency=cfg.embedder_concurrency,
        )
        self.event_source.start()
        self.metrics = MetricsForwarder(self._logs.take_metrics, self._clients.cloudwatch)
        if self.search_api is not None:
            self._search_server = serve(self.search_api, stack.search_api_port)

    def _invoke_search(self, event: dict[str, Any]) -> tuple[bool, Any]:
        assert self.search is not None
        result = self.search.invoke(event)
        return result.ok, result.payload

    def deliver(self, function_name: str, event: Any) -> bool:
        """An S3 event for ``function_name``; False if no such function takes S3 events."""
        if self.s3_events is None or function_name != self.stack.router_function:
            return False
        self.s3_events.submit(event)
        return True

    def flush(self, cloudwatch: CloudWatchClient) -> None:
        """Deliver the metrics and log lines seen so far now, not at the next tick."""
        if self.metrics is not None:
            self.metrics.flush(cloudwatch)
        self.log_feed.flush()

    def _log_sink(self, function: str, line: str) -> None:
        self._logs(function, line)
        self.log_feed(function, line)

    def _router_failed(self, event: Any, error: dict[str, Any] | None) -> None:
        """Lambda's on-failure dead-letter queue for asynchronous invocations."""
        with self._dlq_lock:
            if self._router_dlq_client is None:
                self._router_dlq_client = self._clients.sqs()
            client = self._router_dlq_client
        client.send_message(
            QueueUrl=self.stack.router_dlq_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "ErrorCode": {"DataType": "String", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str((error or {}).get("errorMessage", ""))[:1000] or "-",
                },
            },
        )

    def stop_intake(self) -> None:
        """Stop polling and taking events (first in shutdown, before the pools close)."""
        if self._intake_stopped:
            return
        self._intake_stopped = True
        if self._search_server is not None:
            self._search_server.shutdown()
            self._search_server.server_close()
        if self.event_source is not None:
            self.event_source.stop()
        if self.s3_events is not None:
            self.s3_events.stop()
        if self.metrics is not None:
            self.metrics.stop()

    def close(self) -> None:
        """Stop everything; environments are ended, pending logs delivered."""
        self.stop_intake()
        for pool in (self.router, self.embedder, *([self.search] if self.search else [])):
            pool.close()
        self.log_feed.stop()


__all__ = [
    "ROUTER_CONCURRENCY",
    "ClientFactories",
    "LambdaRuntime",
    "function_spec",
    "lambda_environment",
]
