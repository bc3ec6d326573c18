"""Search Lambda cold import and CPU per query (prints figures, asserts nothing).

    python -m bench.bench_search_api [--queries 200] [--dimension 1024] [--k 20]

* Cold import: ``import imgsearch.handlers.search`` in fresh interpreters with the
  Lambda environment set (module code, Powertools, boto3, the three clients and the
  Searcher), median of several runs, next to boto3 + Powertools + the clients alone.
* CPU per query: the real handler (Powertools, the API's parsing and shaping, the
  presigned URLs of ``k`` results) on HTTP API events, through real botocore clients
  whose HTTP layer is short-circuited in-process (``bench.bench_embedder.short_circuit``):
  the figure is our code's and botocore's CPU, not the network's (``time.process_time``).
  Text, inline image (500 KB JPEG) and ``like`` queries, each measured separately.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import logging
import os
import statistics
import sys
import time
from types import ModuleType
from typing import Any

from bench.bench_embedder import jpeg_bytes, short_circuit
from bench.lambda_import import lambda_env as bench_lambda_env
from bench.lambda_import import report_cold_import
from imgsearch.config import PipelineConfig
from imgsearch.messages import vector_key

BUCKET = "bench-source"
LIKE_KEY = "photos/like.jpg"


def lambda_env(dimension: int) -> dict[str, str]:
    cfg = PipelineConfig(dimension=dimension, source_bucket_name=BUCKET)
    return bench_lambda_env(cfg)


def cold_import(dimension: int, runs: int) -> None:
    report_cold_import(
        "imgsearch.handlers.search",
        lambda_env(dimension),
        function_name="imgsearch-search-bench",
        services=("s3", "s3vectors", "bedrock-runtime"),
        runs=runs,
    )


def load_handler(dimension: int, k: int) -> ModuleType:
    os.environ.update(lambda_env(dimension))
    sys.modules.pop("imgsearch.handlers.search", None)
    module = importlib.import_module("imgsearch.handlers.search")
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives for the whole benchmark
    for handler in logging.getLogger(module.CFG.service_name).handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
    vector = [((i * 37) % 101) / 101.0 - 0.49 for i in range(dimension)]
    embedding = json.dumps({"embeddings": [{"embeddingType": "TEXT", "embedding": vector}]})
    results = {
        "vectors": [
            {
                "key": vector_key(BUCKET, f"photos/{i:05d}.jpg"),
                "distance": 0.1 + i / 1000,
                "metadata": {
                    "source_bucket": BUCKET,
                    "source_key": f"photos/{i:05d}.jpg",
                    "prefix": "photos/",
                    "format": "jpeg",
                    "width": 1024,
                    "height": 768,
                    "size": 500_000,
                    "etag": f"{i:032x}",
                    "s3_uri": f"s3://{BUCKET}/photos/{i:05d}.jpg",
                },
            }
            for i in range(k + 1)
        ],
        "distanceMetric": "cosine",
    }
    like_key = vector_key(BUCKET, LIKE_KEY)
    stored = {"vectors": [{"key": like_key, "data": {"float32": vector}, "metadata": {}}]}
    short_circuit(module.BEDROCK, lambda _: (200, {}, embedding.encode()))
    short_circuit(
        module.S3VECTORS,
        lambda r: (200, {}, json.dumps(stored if "GetVectors" in r.url else results).encode()),
    )
    return module


def event(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "POST /search",
        "rawPath": "/search",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/search"}, "stage": "$default"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


class Ctx:
    function_name = "bench-search"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench-search"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


def cpu_per_query(module: ModuleType, body: dict[str, Any], count: int) -> list[float]:
    samples = []
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # EMF lines
        for _ in range(count):
            start = time.process_time()
            answer = module.lambda_handler(event(body), Ctx())
            samples.append((time.process_time() - start) * 1000)
            if answer["statusCode"] != 200:
                raise SystemExit(f"benchmark query failed: {answer}")
    return samples[min(20, count // 10) :]  # drop warm-up


def report(label: str, samples: list[float]) -> None:
    p95 = sorted(samples)[int(0.95 * (len(samples) - 1))]
    print(
        f"  {label:<44} mean {statistics.fmean(samples):6.2f} ms  "
        f"p50 {statistics.median(samples):6.2f}  p95 {p95:6.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dimension", type=int, default=1024)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--import-runs", type=int, default=5)
    args = parser.parse_args()

    cold_import(args.dimension, args.import_runs)
    print()
    module = load_handler(args.dimension, args.k)
    image = base64.b64encode(jpeg_bytes(500)).decode()
    print(
        f"search Lambda CPU per query, {args.dimension} dimensions, k={args.k} (presigned URLs "
        "included), botocore clients with the HTTP layer short-circuited"
    )
    for label, body in (
        ("text query", {"text": "wind turbine", "k": args.k}),
        ("inline image query (500 KB JPEG)", {"image": image, "k": args.k}),
        (
            "like query (stored vector, no model call)",
            {"like": f"s3://{BUCKET}/{LIKE_KEY}", "k": args.k},
        ),
    ):
        report(label, cpu_per_query(module, body, args.queries))


if __name__ == "__main__":
    main()
