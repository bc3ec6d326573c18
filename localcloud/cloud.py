"""The local cloud: the whole pipeline on one machine, no AWS account.

::

    with LocalCloud.start(load_config(overrides={"visibility_timeout_seconds": 3})) as cloud:
        s3 = cloud.client("s3")
        s3.put_object(Bucket=cloud.resources.source_bucket, Key="a.jpg", Body=jpeg)
        cloud.wait_idle(60)
        assert cloud.accounting().ok

What runs, all bound to 127.0.0.1:

* moto's server, in this process, behind :class:`localcloud.front.FrontApp` (S3, S3 Vectors
  with ``QueryVectors``, Bedrock ``InvokeModel`` by the stand-in model, CloudWatch,
  CloudFormation, STS). ``cloud.endpoint`` is its URL: ``AWS_ENDPOINT_URL``.
* fauxqs for SQS (child process), ``cloud.sqs_endpoint`` = ``AWS_ENDPOINT_URL_SQS``;
  the front server forwards SQS too, so a single ``--endpoint-url`` works as well.
* the local Lambda runtime (:mod:`localcloud.runtime`) running the production handlers.

:meth:`LocalCloud.start` creates what the stack would, with the same names from the same
config: the source and inventory buckets (with S3 Inventory and the notification filters
of :func:`infra.notifications.notification_filters` pointing at the router), the FIFO
queue and FIFO DLQ with the redrive policy, the router's DLQ, the vector bucket and
index (dimension, metric, non-filterable keys), and a CloudFormation stack named
``cfg.stack_name`` whose outputs (:data:`infra.outputs.OUTPUTS`) name them all, so the
scripts find the local resources exactly as they find deployed ones.

One local cloud runs per process at a time: moto's state is process-global.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from imgsearch.config import ConfigError, PipelineConfig, load_config
from imgsearch.contract import EMBEDDER_HANDLER, OUTPUTS, ROUTER_HANDLER
from imgsearch.messages import MessageError, parse_message
from imgsearch.selection import KeySelection
from imgsearch.vectors import NON_FILTERABLE_KEYS
from infra.notifications import notification_filters
from localcloud.accounting import AccountingReport, Ledger, check
from localcloud.cloudwatch_feed import LogsForwarder, QueueMetricsPublisher
from localcloud.faults import Faults
from localcloud.front import ACCOUNT_ID, FrontApp, index_data
from localcloud.runtime import (
    AsyncInvoker,
    FunctionPool,
    FunctionSpec,
    LogRecorder,
    MetricsForwarder,
    SqsEventSource,
)
from localcloud.sqs import SqsServer, start_sqs

DEFAULT_REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
ROUTER_CONCURRENCY = 2
"""Warm router environments (the router has no reserved concurrency in the stack)."""

_ACTIVE = threading.Lock()
_SEQUENCER = itertools.count(1)


@dataclass(frozen=True)
class Resources:
    """Names and addresses of everything the local cloud created."""

    region: str
    account_id: str
    endpoint: str
    sqs_endpoint: str
    stack_name: str
    source_bucket: str
    inventory_bucket: str
    vector_bucket: str
    index_name: str
    index_arn: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    dlq_arn: str
    router_dlq_url: str
    router_function: str
    embedder_function: str


@dataclass(frozen=True)
class Snapshot:
    """Where the pipeline is right now (for progress lines and :meth:`wait_idle`)."""

    queued: int
    in_flight: int
    delayed: int
    dlq: int
    router_pending: int
    embedding: int
    outcomes: dict[str, int]

    @property
    def idle(self) -> bool:
        return not (
            self.queued or self.in_flight or self.delayed or self.router_pending or self.embedding
        )

    def line(self) -> str:
        done = ", ".join(f"{k}={v}" for k, v in sorted(self.outcomes.items())) or "nothing yet"
        return (
            f"queue {self.queued} waiting, {self.in_flight} in flight"
            f"{f', {self.delayed} delayed' if self.delayed else ''}; "
            f"router {self.router_pending} pending; DLQ {self.dlq}; done: {done}"
        )


class _QuietHandler:
    """Werkzeug's request handler (moto's) without a log line per request."""

    @staticmethod
    def make() -> type:
        from moto.moto_server.werkzeug_app import MotoRequestHandler

        class Handler(MotoRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

        return Handler


class LocalCloud:
    """A running local cloud; build one with :meth:`start`, stop it with :meth:`close`."""

    def __init__(self) -> None:
        self.cfg: PipelineConfig
        self.resources: Resources
        self.faults: Faults
        self.front: FrontApp
        self.ledger = Ledger()
        self.logs: LogRecorder
        self.router: FunctionPool | None = None
        self.embedder: FunctionPool | None = None
        self.s3_events: AsyncInvoker | None = None
        self.event_source: SqsEventSource | None = None
        self._metrics: MetricsForwarder | None = None
        self.log_feed: LogsForwarder | None = None
        """Function logs -> CloudWatch Logs ``/aws/lambda/<name>``, as Lambda delivers them."""
        self.queue_metrics: QueueMetricsPublisher | None = None
        """``AWS/SQS`` queue metrics (age of the oldest message...), as SQS publishes them."""
        self._sqs: SqsServer | None = None
        self._server: BaseWSGIServer | None = None
        self._patches: list[tuple[Any, str, Any]] = []
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
        endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._endpoint, self._region = endpoint, region
        self._install_s3_hooks()
        self.resources, self.cfg = provision(self, base, region)
        self.lambda_env = self._lambda_env()
        self.queue_metrics = QueueMetricsPublisher(
            self._sqs,
            (name_of(self.resources.queue_url), name_of(self.resources.dlq_url)),
            lambda: self._new_client("cloudwatch", self.endpoint),
        )

    # ------------------------------------------------------------------ clients

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def sqs_endpoint(self) -> str:
        assert self._sqs is not None
        return self._sqs.endpoint

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

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` aimed at this cloud (SQS straight at fauxqs)."""
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

    # ------------------------------------------------------------------ S3 events

    def _install_s3_hooks(self) -> None:
        from moto.s3 import notifications

        original_event = notifications._get_s3_event

        def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
            event = original_event(event_name, bucket, key, notification_id)
            obj = event["Records"][0]["s3"]["object"]
            # S3 form-encodes the key but leaves "/" alone (moto encodes it as %2F); it
            # adds a per-key ordering token (and the version id on versioned buckets);
            # removal events carry neither size nor ETag.
            obj["key"] = quote_plus(key.name, safe="/")
            obj["sequencer"] = f"{next(_SEQUENCER):016X}"
            if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None):
                obj["versionId"] = str(key.version_id)
            if "ObjectRemoved" in event_name:
                obj.pop("size", None)
                obj.pop("eTag", None)
            return event

        def invoke_lambda(account_id: str, event: Any, fn_arn: str, region: str) -> None:
            self._on_s3_event(fn_arn, event)

        self._patch(notifications, "_get_s3_event", s3_event)
        self._patch(notifications, "_invoke_awslambda", invoke_lambda)

    def _patch(self, module: Any, name: str, value: Any) -> None:
        self._patches.append((module, name, getattr(module, name)))
        setattr(module, name, value)

    def _on_s3_event(self, fn_arn: str, event: Any) -> None:
        name = fn_arn.rsplit(":", 1)[-1]
        if self.s3_events is not None and name == self.resources.router_function:
            self.s3_events.submit(event)
        else:
            self.logs(
                "s3", json.dumps({"message": f"event for {fn_arn} dropped: no such function"})
            )

    # ------------------------------------------------------------------ runtime

    def _lambda_env(self) -> dict[str, str]:
        keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env.update(self.cfg.to_lambda_env())
        env.update(self.env)
        env.update(
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_EXECUTION_ENV="AWS_Lambda_python3.13",
            POWERTOOLS_TRACE_DISABLED="true",
            LOCALCLOUD_ACCOUNT_ID=ACCOUNT_ID,
        )
        return env

    def _spec(self, name: str, handler: str, timeout: int, memory: int) -> FunctionSpec:
        env = {
            **self.lambda_env,
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        }
        return FunctionSpec(name, handler, float(timeout), memory, env)

    def _start_runtime(self, router_handler: str, embedder_handler: str) -> None:
        cfg, res = self.cfg, self.resources
        if cfg.visibility_timeout_seconds < cfg.embedder_timeout_seconds:
            # Lambda refuses this event source mapping too: a message would come back
            # while the invocation that holds it is still running.
            raise ConfigError(
                f"config key 'visibility_timeout_seconds': {cfg.visibility_timeout_seconds}s "
                f"is less than embedder_timeout_seconds ({cfg.embedder_timeout_seconds}s); "
                "Lambda rejects such an SQS event source. Raise the visibility timeout or "
                "lower the timeout (tests: set both)"
            )
        self.log_feed = LogsForwarder(
            lambda: self._new_client("logs", self.endpoint),
            (res.router_function, res.embedder_function),
        )
        self.router = FunctionPool(
            self._spec(
                res.router_function,
                router_handler,
                cfg.router_timeout_seconds,
                cfg.router_memory_mb,
            ),
            ROUTER_CONCURRENCY,
            self._log_sink,
        )
        self.embedder = FunctionPool(
            self._spec(
                res.embedder_function,
                embedder_handler,
                cfg.embedder_timeout_seconds,
                cfg.embedder_memory_mb,
            ),
            cfg.embedder_concurrency,
            self._log_sink,
        )
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
            lambda: self._new_client("sqs", self.sqs_endpoint),
            res.queue_url,
            res.queue_arn,
            res.region,
            self.embedder,
            batch_size=cfg.batch_size,
            max_concurrency=cfg.embedder_concurrency,
        )
        self.event_source.start()
        self._metrics = MetricsForwarder(
            self.logs, lambda: self._new_client("cloudwatch", self.endpoint)
        )

    def _log_sink(self, function: str, line: str) -> None:
        self.logs(function, line)
        if self.log_feed is not None:
            self.log_feed(function, line)

    def _router_failed(self, event: Any, error: dict[str, Any] | None) -> None:
        """Lambda's on-failure dead-letter queue for asynchronous invocations."""
        self.client("sqs").send_message(
            QueueUrl=self.resources.router_dlq_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "ErrorCode": {"DataType": "String", "StringValue": "200"},
                "ErrorMessage": {
                    "DataType": "String",
                    "StringValue": str((error or {}).get("errorMessage", ""))[:1000] or "-",
                },
            },
        )

    # ------------------------------------------------------------------ observing

    def _queue_counts(self, url: str) -> dict[str, int]:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {k: int(v) for k, v in attrs.items()}

    def snapshot(self) -> Snapshot:
        main = self._queue_counts(self.resources.queue_url)
        dlq = self._queue_counts(self.resources.dlq_url)
        return Snapshot(
            queued=main.get("ApproximateNumberOfMessages", 0),
            in_flight=main.get("ApproximateNumberOfMessagesNotVisible", 0),
            delayed=main.get("ApproximateNumberOfMessagesDelayed", 0),
            dlq=sum(dlq.values()),
            router_pending=self.s3_events.pending if self.s3_events else 0,
            embedding=self.event_source.in_flight if self.event_source else 0,
            outcomes=dict(self.ledger.counts),
        )

    def wait_idle(
        self,
        timeout: float = 120.0,
        *,
        progress: Callable[[Snapshot], None] | None = None,
        interval: float = 0.1,
    ) -> Snapshot:
        """Block until no event, message or invocation is pending; raise TimeoutError if not.

        Messages waiting for their visibility timeout count as pending, so this also
        waits out redeliveries and the move to the DLQ after ``maxReceiveCount``.
        """
        deadline = time.monotonic() + timeout
        calm = 0
        while True:
            snap = self.snapshot()
            if progress is not None:
                progress(snap)
            calm = calm + 1 if snap.idle else 0
            if calm >= 3:
                if self._metrics is not None:
                    self._metrics.flush(self.client("cloudwatch"))
                if self.log_feed is not None:
                    self.log_feed.flush()
                return snap
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"the local cloud is still busy after {timeout:.0f}s: {snap.line()}"
                )
            time.sleep(interval)

    def vector_keys(self) -> set[str]:
        data = index_data(
            {
                "vectorBucketName": self.resources.vector_bucket,
                "indexName": self.resources.index_name,
            }
        )
        return set(data.keys())

    def dlq_messages(self) -> list[dict[str, Any]]:
        """Bodies of every message in the embed DLQ and the router DLQ (not consumed)."""
        assert self._sqs is not None
        out: list[dict[str, Any]] = []
        for url in (self.resources.dlq_url, self.resources.router_dlq_url):
            view = self._sqs.inspect_queue(url.rsplit("/", 1)[-1])
            messages = view.get("messages", {})
            for item in [*messages.get("ready", []), *messages.get("delayed", [])]:
                out.append({"queue": url, "body": item.get("body", "")})
            for item in messages.get("inflight", []):
                out.append({"queue": url, "body": item.get("message", {}).get("body", "")})
        return out

    def _dlq_objects(self) -> set[tuple[str, str]]:
        objects: set[tuple[str, str]] = set()
        for item in self.dlq_messages():
            body = item["body"]
            try:
                msg = parse_message(body)
                objects.add((msg.bucket, msg.key))
                continue
            except MessageError:
                pass
            try:  # a router DLQ entry: the S3 event itself
                for record in json.loads(body).get("Records", []):
                    s3 = record["s3"]
                    objects.add((s3["bucket"]["name"], unquote_plus(s3["object"]["key"])))
            except (ValueError, KeyError, TypeError, AttributeError):
                self.logs("localcloud", f"unreadable DLQ message: {body[:200]}")
        return objects

    def source_objects(self) -> set[tuple[str, str]]:
        """Objects in the source bucket that the pipeline indexes (KeySelection)."""
        selection = KeySelection.from_config(self.cfg)
        bucket = self.resources.source_bucket
        found: set[tuple[str, str]] = set()
        paginator = self.client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                if selection.matches(obj["Key"]):
                    found.add((bucket, obj["Key"]))
        return found

    def accounting(self) -> AccountingReport:
        """Check the invariant: every object is in exactly one of vector / failure / DLQ."""
        return check(self.source_objects(), self.vector_keys(), self.ledger, self._dlq_objects())

    def status(self) -> dict[str, Any]:
        """A JSON-friendly picture of the cloud (served at ``/_localcloud/status``)."""
        out: dict[str, Any] = (
            {"resources": asdict(self.resources)} if hasattr(self, "resources") else {}
        )
        try:
            out["snapshot"] = asdict(self.snapshot())
        except Exception as exc:  # e.g. during shutdown
            out["snapshot_error"] = str(exc)
        out["ledger"] = {
            "outcomes": dict(self.ledger.counts),
            "failures_by_reason": dict(self.ledger.failures_by_reason),
        }
        for name, pool in (("router", self.router), ("embedder", self.embedder)):
            if pool is not None:
                out[name] = dict(pool.stats)
        if self.event_source is not None:
            out["event_source"] = dict(self.event_source.stats)
        if self.s3_events is not None:
            out["s3_events"] = dict(self.s3_events.stats)
        out["faults_injected"] = dict(self.faults.injected)
        return out

    # ------------------------------------------------------------------ stop

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.event_source is not None:
                self.event_source.stop()
            if self.s3_events is not None:
                self.s3_events.stop()
            if self._metrics is not None:
                self._metrics.stop()
            if self.queue_metrics is not None:
                self.queue_metrics.stop()
            for pool in (self.router, self.embedder):
                if pool is not None:
                    pool.close()
            if self.log_feed is not None:
                self.log_feed.stop()
            for module, name, value in reversed(self._patches):
                setattr(module, name, value)
            self._patches.clear()
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


# --------------------------------------------------------------------------- provisioning


def name_of(queue_url: str) -> str:
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def provision(
    cloud: LocalCloud, cfg: PipelineConfig, region: str
) -> tuple[Resources, PipelineConfig]:
    """Create what the stack creates, named from ``cfg``; returns the effective config."""
    s3 = cloud.client("s3")
    sqs = cloud.client("sqs")
    vectors = cloud.client("s3vectors")
    source = cfg.source_bucket_name or f"{cfg.name_prefix}-source"
    inventory = f"{cfg.name_prefix}-inventory"
    router_fn, embedder_fn = f"{cfg.name_prefix}-router", f"{cfg.name_prefix}-embedder"

    for bucket in (source, inventory):
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    if cfg.source_bucket_versioned:
        s3.put_bucket_versioning(Bucket=source, VersioningConfiguration={"Status": "Enabled"})
    inventory_cfg: dict[str, Any] = {
        "Id": cfg.inventory_config_id,
        "IsEnabled": True,
        "IncludedObjectVersions": "Current",
        "Destination": {
            "S3BucketDestination": {
                "Bucket": f"arn:aws:s3:::{inventory}",
                "AccountId": ACCOUNT_ID,
                "Format": "CSV",
            }
        },
        "Schedule": {"Frequency": cfg.inventory_frequency},
        "OptionalFields": ["Size", "LastModifiedDate", "ETag", "StorageClass"],
    }
    if len(cfg.prefixes) == 1 and cfg.prefixes[0]:
        inventory_cfg["Filter"] = {"Prefix": cfg.prefixes[0]}
    s3.put_bucket_inventory_configuration(
        Bucket=source, Id=cfg.inventory_config_id, InventoryConfiguration=inventory_cfg
    )

    fifo = {
        "FifoQueue": "true",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
    }
    dlq_url = sqs.create_queue(
        QueueName=cfg.dlq_name,
        Attributes={**fifo, "MessageRetentionPeriod": str(cfg.dlq_retention_days * 86400)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=cfg.queue_name,
        Attributes={
            **fifo,
            "VisibilityTimeout": str(cfg.visibility_timeout_seconds),
            "MessageRetentionPeriod": str(cfg.queue_retention_days * 86400),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": cfg.max_receive_count}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    router_dlq_url = sqs.create_queue(
        QueueName=cfg.router_dlq_name,
        Attributes={"MessageRetentionPeriod": str(cfg.dlq_retention_days * 86400)},
    )["QueueUrl"]

    vectors.create_vector_bucket(
        vectorBucketName=cfg.vector_bucket_name, encryptionConfiguration={"sseType": "AES256"}
    )
    index_arn = vectors.create_index(
        vectorBucketName=cfg.vector_bucket_name,
        indexName=cfg.index_name,
        dataType="float32",
        dimension=cfg.dimension,
        distanceMetric=cfg.distance_metric,
        metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
    )["indexArn"]

    router_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{router_fn}"
    s3.put_bucket_notification_configuration(
        Bucket=source,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "Id": f"router-{i}",
                    "LambdaFunctionArn": router_arn,
                    "Events": [
                        "s3:ObjectCreated:*",
                        "s3:ObjectRemoved:*",
                        "s3:LifecycleExpiration:*",
                    ],
                    "Filter": {
                        "Key": {
                            "FilterRules": [
                                *([{"Name": "prefix", "Value": f.prefix}] if f.prefix else []),
                                {"Name": "suffix", "Value": f.suffix},
                            ]
                        }
                    },
                }
                for i, f in enumerate(notification_filters(cfg))
            ]
        },
    )

    effective = cfg.replace(queue_url=queue_url, source_bucket_name=source, region=region)
    resources = Resources(
        region=region,
        account_id=ACCOUNT_ID,
        endpoint=cloud.endpoint,
        sqs_endpoint=cloud.sqs_endpoint,
        stack_name=cfg.stack_name,
        source_bucket=source,
        inventory_bucket=inventory,
        vector_bucket=cfg.vector_bucket_name,
        index_name=cfg.index_name,
        index_arn=index_arn,
        queue_url=queue_url,
        queue_arn=queue_arn,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        router_dlq_url=router_dlq_url,
        router_function=router_fn,
        embedder_function=embedder_fn,
    )
    _publish_stack(cloud, resources)
    return resources, effective


def _publish_stack(cloud: LocalCloud, res: Resources) -> None:
    """A CloudFormation stack whose outputs name the local resources, as the real one does."""
    outputs = {
        OUTPUTS.source_bucket_name: res.source_bucket,
        OUTPUTS.inventory_bucket_name: res.inventory_bucket,
        OUTPUTS.queue_url: res.queue_url,
        OUTPUTS.dlq_url: res.dlq_url,
        OUTPUTS.router_dlq_url: res.router_dlq_url,
        OUTPUTS.vector_bucket_name: res.vector_bucket,
        OUTPUTS.index_name: res.index_name,
        OUTPUTS.index_arn: res.index_arn,
        OUTPUTS.dashboard_url: f"{res.endpoint}/_localcloud/status",
        OUTPUTS.embedder_function_name: res.embedder_function,
        OUTPUTS.router_function_name: res.router_function,
    }
    template = {
        "Description": "Local cloud stand-in for the image search pipeline stack",
        "Resources": {"LocalCloud": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    # moto warns (from its server thread) that it does not model WaitConditionHandle.
    warnings.filterwarnings("ignore", message=".*AWS::CloudFormation::WaitConditionHandle.*")
    cloud.client("cloudformation").create_stack(
        StackName=res.stack_name, TemplateBody=json.dumps(template)
    )


__all__ = ["EMBEDDER_HANDLER", "ROUTER_HANDLER", "LocalCloud", "Resources", "Snapshot", "provision"]
