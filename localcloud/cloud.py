"""The local cloud: the whole pipeline on one machine, no AWS account.

::

    overrides = {"visibility_timeout_seconds": 12, "embedder_timeout_seconds": 2}
    with LocalCloud.start(load_config(overrides=overrides)) as cloud:
        s3 = cloud.client("s3")
        s3.put_object(Bucket=cloud.resources.source_bucket, Key="a.jpg", Body=jpeg)
        cloud.wait_idle(60)
        assert cloud.accounting().ok

What runs, all bound to 127.0.0.1:

* moto's server, in this process, behind :class:`localcloud.services.front.FrontApp`
  (S3, S3 Vectors with ``QueryVectors``, Bedrock ``InvokeModel`` by the stand-in model,
  CloudWatch, CloudFormation, STS). ``cloud.endpoint`` is its URL: ``AWS_ENDPOINT_URL``.
* fauxqs for SQS (child process), ``cloud.sqs_endpoint`` = ``AWS_ENDPOINT_URL_SQS``;
  the front server forwards SQS too, so a single ``--endpoint-url`` works as well.
* the local Lambda runtime (:mod:`localcloud.lambdas`) running the production handlers.

:meth:`LocalCloud.start` creates what the stack would (:mod:`localcloud.provision`),
with the same names from the same config. What the pipeline is doing is read through
:mod:`localcloud.observe` (``snapshot``, ``wait_idle``, ``accounting``...).

One local cloud runs per process at a time: moto's state is process-global.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from imgsearch.config import PipelineConfig, load_config
from imgsearch.contract import EMBEDDER_HANDLER, ROUTER_HANDLER
from localcloud.accounting import Ledger
from localcloud.lambdas.async_invoke import AsyncInvoker
from localcloud.lambdas.event_source import SqsEventSource
from localcloud.lambdas.pool import FunctionPool
from localcloud.lambdas.runtime import ClientFactories, LambdaRuntime, lambda_environment
from localcloud.observe import Observation
from localcloud.provision import ProvisionedStack, provision, queue_name
from localcloud.services.faults import Faults
from localcloud.services.front import FrontApp
from localcloud.services.s3_events import S3EventHook
from localcloud.services.sqs import SqsServer, start_sqs
from localcloud.telemetry.cloudwatch_feed import LogsForwarder, QueueMetricsPublisher
from localcloud.telemetry.logs import LogRecorder

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient
    from mypy_boto3_sqs import SQSClient

DEFAULT_REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}

_ACTIVE = threading.Lock()


class _QuietHandler:
    """Werkzeug's request handler (moto's) without a log line per request."""

    @staticmethod
    def make() -> type:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        class Handler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        return Handler


class LocalCloud(Observation):
    """A running local cloud; build one with :meth:`start`, stop it with :meth:`close`."""

    def __init__(self) -> None:
        self.cfg: PipelineConfig
        self.resources: ProvisionedStack
        self.faults: Faults
        self.front: FrontApp
        self.ledger = Ledger()
        self.logs: LogRecorder
        self.runtime: LambdaRuntime | None = None
        """The Lambda functions; None with ``start(runtime=False)``."""
        self.queue_metrics: QueueMetricsPublisher | None = None
        """``AWS/SQS`` queue metrics (age of the oldest message...), as SQS publishes them."""
        self._sqs: SqsServer | None = None
        self._server: BaseWSGIServer | None = None
        self._s3_hook: S3EventHook | None = None
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._closed = False
        self.lambda_env: dict[str, str] = {}

    # ------------------------------------------------------------------ start

    @classmethod
    def start(
        cls,
        cfg: PipelineConfig | None = None,
        *,
        overrides: dict[str, Any] | None = None,
        region: str | None = None,
        log_file: Path | str | None = None,
        router_handler: str = ROUTER_HANDLER,
        embedder_handler: str = EMBEDDER_HANDLER,
        runtime: bool = True,
        fault_seed: int = 1,
        extra_env: dict[str, str] | None = None,
        port: int = 0,
        sqs_port: int = 0,
    ) -> LocalCloud:
        """Start everything, create the stack's resources, start the runtime.

        ``cfg`` defaults to :func:`load_config` (``cdk.json``) with ``overrides``.
        ``runtime=False`` starts only the services (no Lambda functions run).
        ``router_handler`` / ``embedder_handler`` replace the production handlers
        (tests of the runtime itself use small handlers of their own), and
        ``extra_env`` is added to both functions' environment. ``port`` and
        ``sqs_port`` fix the endpoints' ports (0: any free port).
        """
        if not _ACTIVE.acquire(blocking=False):
            raise RuntimeError(
                "a LocalCloud is already running in this process (moto's state is "
                "process-global); close it before starting another"
            )
        cloud = cls()
        try:
            base = cfg if cfg is not None else load_config()
            if overrides:
                base = PipelineConfig.from_mapping({**base.as_dict(), **overrides})
            cloud._start(base, region, log_file, fault_seed, port, sqs_port)
            cloud.lambda_env.update(extra_env or {})
            if runtime:
                cloud._start_runtime(router_handler, embedder_handler)
        except BaseException:
            cloud.close()
            raise
        return cloud

    def _start(
        self,
        base: PipelineConfig,
        region: str | None,
        log_file: Path | str | None,
        seed: int,
        port: int = 0,
        sqs_port: int = 0,
    ) -> None:
        from moto.moto_api._internal.models import moto_api_backend
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        region = region or base.region or DEFAULT_REGION
        moto_api_backend.reset()
        self.faults = Faults(seed=seed)
        self.logs = LogRecorder(self.ledger, Path(log_file) if log_file else None)
        self._sqs = start_sqs(sqs_port)
        self.front = FrontApp(
            DomainDispatcherApplication(create_backend_app),
            self.faults,
            sqs_endpoint=self._sqs.endpoint,
            status=self.status,
        )
        self._server = make_server(
            "127.0.0.1", port, self.front, threaded=True, request_handler=_QuietHandler.make()
        )
        threading.Thread(
            target=self._server.serve_forever, name="localcloud-front", daemon=True
        ).start()
        self._endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._region = region
        self._s3_hook = S3EventHook(self._on_s3_event)
        self._s3_hook.install()
        self.resources, self.cfg = provision(
            base,
            region,
            endpoint=self.endpoint,
            sqs_endpoint=self.sqs_endpoint,
            s3=self.client("s3"),
            sqs=self.client("sqs"),
            s3vectors=self.client("s3vectors"),
            cloudformation=self.client("cloudformation"),
        )
        self.lambda_env = lambda_environment(self.cfg, self.env)
        self.queue_metrics = QueueMetricsPublisher(
            self._sqs,
            (queue_name(self.resources.queue_url), queue_name(self.resources.dlq_url)),
            lambda: self._new_client("cloudwatch", self.endpoint),
        )

    def _start_runtime(self, router_handler: str, embedder_handler: str) -> None:
        self.runtime = LambdaRuntime(
            self.cfg,
            self.resources,
            self.lambda_env,
            self.logs,
            ClientFactories(
                sqs=lambda: self._new_client("sqs", self.sqs_endpoint),
                cloudwatch=lambda: self._new_client("cloudwatch", self.endpoint),
                logs=lambda: self._new_client("logs", self.endpoint),
            ),
            router_handler=router_handler,
            embedder_handler=embedder_handler,
        )
        self.runtime.start()

    def _on_s3_event(self, fn_arn: str, event: Any) -> None:
        name = fn_arn.rsplit(":", 1)[-1]
        if self.runtime is None or not self.runtime.deliver(name, event):
            self.logs(
                "s3", json.dumps({"message": f"event for {fn_arn} dropped: no such function"})
            )

    # ------------------------------------------------------------------ the runtime's parts

    @property
    def router(self) -> FunctionPool | None:
        return self.runtime.router if self.runtime else None

    @property
    def embedder(self) -> FunctionPool | None:
        return self.runtime.embedder if self.runtime else None

    @property
    def s3_events(self) -> AsyncInvoker | None:
        """S3's asynchronous invocations of the router."""
        return self.runtime.s3_events if self.runtime else None

    @property
    def event_source(self) -> SqsEventSource | None:
        """The embedder's event source mapping on the FIFO queue."""
        return self.runtime.event_source if self.runtime else None

    @property
    def log_feed(self) -> LogsForwarder | None:
        """Function logs -> CloudWatch Logs ``/aws/lambda/<name>``, as Lambda delivers them."""
        return self.runtime.log_feed if self.runtime else None

    # ------------------------------------------------------------------ clients

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def sqs_endpoint(self) -> str:
        assert self._sqs is not None
        return self._sqs.endpoint

    @property
    def sqs_server(self) -> SqsServer:
        """The fauxqs process (its inspection endpoint shows every message)."""
        assert self._sqs is not None
        return self._sqs

    @property
    def env(self) -> dict[str, str]:
        """The variables that point boto3, the AWS CLI and the scripts at this cloud."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ENDPOINT_URL_SQS": self.sqs_endpoint,
            **CREDENTIALS,
            "AWS_DEFAULT_REGION": self._region,
            "AWS_REGION": self._region,
        }

    @contextlib.contextmanager
    def environ(self) -> Iterator[dict[str, str]]:
        """Temporarily export :attr:`env` into ``os.environ`` (for in-process scripts)."""
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            yield self.env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    @overload
    def client(self, service: Literal["s3"], **kwargs: Any) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"], **kwargs: Any) -> SQSClient: ...
    @overload
    def client(self, service: Literal["s3vectors"], **kwargs: Any) -> S3VectorsClient: ...
    @overload
    def client(
        self, service: Literal["bedrock-runtime"], **kwargs: Any
    ) -> BedrockRuntimeClient: ...
    @overload
    def client(self, service: Literal["cloudformation"], **kwargs: Any) -> CloudFormationClient: ...
    @overload
    def client(self, service: Literal["cloudwatch"], **kwargs: Any) -> CloudWatchClient: ...
    @overload
    def client(self, service: Literal["logs"], **kwargs: Any) -> CloudWatchLogsClient: ...
    @overload
    def client(self, service: Literal["lambda"], **kwargs: Any) -> LambdaClient: ...
    @overload
    def client(self, service: str, **kwargs: Any) -> Any: ...

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` aimed at this cloud (SQS straight at fauxqs).

        Without ``kwargs`` the client is shared (boto3 clients are thread-safe).
        """
        url = self.sqs_endpoint if service == "sqs" else self.endpoint
        if kwargs:
            return self._new_client(service, url, **kwargs)
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._new_client(service, url)
            return self._clients[service]

    def _new_client(self, service: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("config", Config(retries={"mode": "standard", "max_attempts": 3}))
        return boto3.client(
            service,
            endpoint_url=url,
            region_name=self._region,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            **kwargs,
        )

    # ------------------------------------------------------------------ stop

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.runtime is not None:
                self.runtime.stop_intake()
            if self.queue_metrics is not None:
                self.queue_metrics.stop()
            if self.runtime is not None:
                self.runtime.close()
            if self._s3_hook is not None:
                self._s3_hook.remove()
            if self._server is not None:
                self._server.shutdown()
                self._server.server_close()
            if self._sqs is not None:
                self._sqs.close()
            if hasattr(self, "logs"):
                self.logs.close()
        finally:
            _ACTIVE.release()

    def __enter__(self) -> LocalCloud:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["CREDENTIALS", "DEFAULT_REGION", "LocalCloud"]
