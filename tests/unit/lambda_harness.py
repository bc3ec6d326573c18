"""Runs the router and embedder handlers in-process against moto and a stubbed Bedrock.

The handlers build their clients at import, from the environment the stack would
set (``PipelineConfig.to_lambda_env``). The harness sets that environment, starts
moto (S3, SQS, S3 Vectors), creates the bucket, queue and index, then imports the
handler modules fresh. Bedrock is stubbed with botocore's Stubber on the handler's
own ``bedrock-runtime`` client (moto's Bedrock runtime returns ``{}``).

Observations: ``logs()`` are the JSON lines the Powertools Logger wrote, ``metrics()``
the EMF blobs Powertools Metrics printed, ``bedrock_requests`` the InvokeModel
bodies sent, ``vector_calls`` the S3 Vectors operations called.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from imgsearch.config import PipelineConfig
from imgsearch.messages import ObjectMessage, for_backfill, from_s3_record, to_send_entry
from imgsearch.vectors import NON_FILTERABLE_KEYS

REGION = "us-east-1"
ACCOUNT = "123456789012"
SOURCE = "photo-source"


@dataclass
class FakeContext:
    remaining_ms: int = 60_000
    function_name: str = "imgsearch-embedder"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:imgsearch-embedder"
    aws_request_id: str = "request-1"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def vector_for(seed: int, dimension: int) -> list[float]:
    """A deterministic non-zero embedding."""
    return [((seed * 31 + i * 17) % 97) / 97.0 - 0.5 + 1e-3 for i in range(dimension)]


class Pipeline:
    """moto-backed bucket, queue and index, with the handler modules loaded against them."""

    def __init__(self, cfg: PipelineConfig, capsys: pytest.CaptureFixture[str]) -> None:
        self.cfg = cfg
        self.capsys = capsys
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.s3v = boto3.client("s3vectors", region_name=REGION)
        self.s3.create_bucket(Bucket=SOURCE)
        self.queue_url = self.sqs.create_queue(
            QueueName=cfg.queue_name,
            Attributes={"FifoQueue": "true", "VisibilityTimeout": "900"},
        )["QueueUrl"]
        self.s3v.create_vector_bucket(vectorBucketName=cfg.vector_bucket_name)
        self.s3v.create_index(
            vectorBucketName=cfg.vector_bucket_name,
            indexName=cfg.index_name,
            dataType="float32",
            dimension=cfg.dimension,
            distanceMetric=cfg.distance_metric,
            metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
        )
        self._log = io.StringIO()
        self.bedrock_requests: list[dict[str, Any]] = []
        self.vector_calls: list[str] = []
        self.put_vector_counts: list[int] = []
        self._seed = 0
        self.embedder: ModuleType = self._load("imgsearch.handlers.embedder")
        self.router: ModuleType | None = None
        self.stub = Stubber(self.embedder.BEDROCK)
        self.stub.activate()
        self.embedder.BEDROCK.meta.events.register(
            "before-parameter-build.bedrock-runtime.InvokeModel", self._seen_bedrock
        )
        self.embedder.S3VECTORS.meta.events.register(
            "before-call.s3vectors.*", lambda model, **_: self.vector_calls.append(model.name)
        )
        self.embedder.S3VECTORS.meta.events.register(
            "before-parameter-build.s3vectors.PutVectors",
            lambda params, **_: self.put_vector_counts.append(len(params["vectors"])),
        )

    # ------------------------------------------------------------------ modules

    def _load(self, name: str) -> ModuleType:
        sys.modules.pop(name, None)
        module = importlib.import_module(name)
        for handler in logging.getLogger(self.cfg.service_name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self._log)
        return module

    def load_router(self) -> ModuleType:
        self.router = self._load("imgsearch.handlers.router")
        return self.router

    def _seen_bedrock(self, params: dict[str, Any], **_: Any) -> None:
        self.bedrock_requests.append(json.loads(params["body"]))

    # ------------------------------------------------------------------ the bucket

    def put(self, key: str, data: bytes) -> str:
        """Upload; returns the ETag without quotes."""
        return str(self.s3.put_object(Bucket=SOURCE, Key=key, Body=data)["ETag"]).strip('"')

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=SOURCE, Key=key)

    # ------------------------------------------------------------------ messages

    def s3_record(
        self, key: str, kind: str = "upsert", *, etag: str | None = None
    ) -> dict[str, Any]:
        """An S3 event notification record, key URL-encoded the way S3 does it."""
        obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": uuid.uuid4().hex}
        if kind == "upsert":
            head = self.s3.head_object(Bucket=SOURCE, Key=key)
            obj.update(size=head["ContentLength"], eTag=etag or head["ETag"].strip('"'))
        return {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": REGION,
            "eventTime": "2025-11-13T12:00:00.000Z",
            "eventName": "ObjectCreated:Put" if kind == "upsert" else "ObjectRemoved:Delete",
            "s3": {"bucket": {"name": SOURCE}, "object": obj},
        }

    def upsert(self, key: str, etag: str | None = None) -> ObjectMessage:
        return from_s3_record(self.s3_record(key, etag=etag))

    def removed(self, key: str) -> ObjectMessage:
        return from_s3_record(self.s3_record(key, "delete"))

    def backfill(self, key: str) -> ObjectMessage:
        head = self.s3.head_object(Bucket=SOURCE, Key=key)
        return for_backfill(SOURCE, key, size=head["ContentLength"], etag=head["ETag"])

    def sqs_event(self, *messages: ObjectMessage | str) -> dict[str, Any]:
        """The Lambda event for a batch; a ``str`` is a raw (possibly invalid) body."""
        records = []
        for i, msg in enumerate(messages):
            if isinstance(msg, str):
                entry = {
                    "MessageBody": msg,
                    "MessageGroupId": "g-raw",
                    "MessageDeduplicationId": str(i),
                }
            else:
                entry = to_send_entry(msg, self.cfg.message_groups, str(i))
            records.append(_record(entry, i))
        return {"Records": records}

    def received_event(self, max_messages: int = 10) -> dict[str, Any]:
        """The Lambda event for messages really on the (moto) queue."""
        got = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{self.cfg.queue_name}",
                    "awsRegion": REGION,
                }
                for m in got
            ]
        }

    # ------------------------------------------------------------------ Bedrock

    def bedrock_ok(self, count: int = 1) -> list[list[float]]:
        """Queue ``count`` successful InvokeModel responses; returns their vectors."""
        vectors = []
        for _ in range(count):
            self._seed += 1
            vectors.append(vector_for(self._seed, self.cfg.dimension))
            self.bedrock_vector(vectors[-1])
        return vectors

    def bedrock_vector(self, vector: list[float]) -> None:
        """Queue one InvokeModel response carrying ``vector`` in the model's shape."""
        field = "embeddings" if self.cfg.model.family == "nova" else "data"
        payload = json.dumps({field: [{"embeddingType": "IMAGE", "embedding": vector}]}).encode()
        self.stub.add_response(
            "invoke_model",
            {
                "body": StreamingBody(io.BytesIO(payload), len(payload)),
                "contentType": "application/json",
            },
        )

    def bedrock_error(self, code: str, status: int, count: int = 1, message: str = "") -> None:
        for _ in range(count):
            self.stub.add_client_error("invoke_model", code, message, http_status_code=status)

    # ------------------------------------------------------------------ running

    def run(self, event: dict[str, Any], context: FakeContext | None = None) -> dict[str, Any]:
        self._log.seek(0)
        self._log.truncate()
        self.capsys.readouterr()
        response: dict[str, Any] = self.embedder.lambda_handler(event, context or FakeContext())
        return response

    def route(self, event: dict[str, Any]) -> dict[str, Any]:
        router = self.router or self.load_router()
        self._log.seek(0)
        self._log.truncate()
        self.capsys.readouterr()
        response: dict[str, Any] = router.lambda_handler(event, FakeContext(function_name="router"))
        return response

    # ------------------------------------------------------------------ observing

    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._log.getvalue().splitlines() if line.strip()]

    def outcomes(self) -> list[dict[str, Any]]:
        """The one-per-message outcome lines."""
        return [line for line in self.logs() if "outcome" in line]

    def metrics(self) -> dict[str, list[tuple[float, dict[str, str]]]]:
        """Metric name -> [(value, dimensions)] from the EMF lines printed since ``run``."""
        found: dict[str, list[tuple[float, dict[str, str]]]] = {}
        for line in self.capsys.readouterr().out.splitlines():
            try:
                blob = json.loads(line)
            except ValueError:
                continue
            if not isinstance(blob, dict) or "_aws" not in blob:
                continue
            directive = blob["_aws"]["CloudWatchMetrics"][0]
            dims = {d: blob[d] for group in directive["Dimensions"] for d in group}
            assert directive["Namespace"] == self.cfg.metrics_namespace
            for metric in directive["Metrics"]:
                values = blob[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    found.setdefault(metric["Name"], []).append((float(value), dims))
        return found

    def vectors(self) -> dict[str, dict[str, Any]]:
        listed = self.s3v.list_vectors(
            vectorBucketName=self.cfg.vector_bucket_name,
            indexName=self.cfg.index_name,
            returnMetadata=True,
            returnData=True,
        )["vectors"]
        return {v["key"]: v for v in listed}


def _record(entry: dict[str, str], i: int) -> dict[str, Any]:
    return {
        "messageId": f"m{i}-{uuid.uuid4().hex[:8]}",
        "receiptHandle": f"rh-{i}",
        "body": entry["MessageBody"],
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SequenceNumber": str(10**19 + i),
            "MessageGroupId": entry["MessageGroupId"],
            "MessageDeduplicationId": entry["MessageDeduplicationId"],
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:imgsearch-embed.fifo",
        "awsRegion": REGION,
    }


def start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    **overrides: Any,
) -> Iterator[Pipeline]:
    """Generator for a fixture: the whole pipeline on moto with ``overrides`` applied."""
    base: dict[str, Any] = {
        "dimension": 256,
        "queue_url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/imgsearch-embed.fifo",
    }
    cfg = PipelineConfig(**{**base, **overrides})
    for name in list(os.environ):
        if name.startswith(("IMGSEARCH_", "AWS_ENDPOINT_URL")):
            monkeypatch.delenv(name)
    for name, value in cfg.to_lambda_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        pipeline = Pipeline(cfg, capsys)
        # the queue URL moto made, in case it differs from the configured one
        monkeypatch.setenv("IMGSEARCH_QUEUE_URL", pipeline.queue_url)
        pipeline.cfg = cfg.replace(queue_url=pipeline.queue_url)
        try:
            yield pipeline
        finally:
            pipeline.stub.deactivate()
            for name in ("imgsearch.handlers.embedder", "imgsearch.handlers.router"):
                sys.modules.pop(name, None)
