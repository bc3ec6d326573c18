"""Search Lambda: the search API's HTTP API (payload 2.0) events -> the one search library.

Thin: builds the clients and the :class:`imgsearch.search.Searcher` once per container
(the index from the deployed config: no ``GetIndex``, which the role is not granted),
hands each event to :class:`imgsearch.api_search.SearchApi`, logs one line per request
(route, status, error code, Bedrock calls) and emits ``SearchModelCalls``. A bug is
logged with its traceback and answered 500 ``internal_error`` without the details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.session import get_session

from imgsearch.api_search import SearchApi, error_answer
from imgsearch.config import PipelineConfig
from imgsearch.contract import METRICS
from imgsearch.handlers.tracing import lambda_tracer
from imgsearch.search import API_SPELLING, IndexInfo, Searcher

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient

CFG = PipelineConfig.from_env()

logger = Logger(service=CFG.service_name, level=CFG.log_level)
metrics = Metrics(namespace=CFG.metrics_namespace, service=CFG.service_name)
traced = lambda_tracer(CFG.service_name)

# botocore's session, not boto3's (as in the embedder): no s3transfer in the cold start.
_AWS = get_session()
_AWS_RETRIES = Config(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5)
S3: S3Client = _AWS.create_client("s3", config=Config(signature_version="s3v4", connect_timeout=5))
S3VECTORS: S3VectorsClient = _AWS.create_client("s3vectors", config=_AWS_RETRIES)
# Bedrock retries are the Embedder's (counted, with backoff): botocore must not retry too.
BEDROCK: BedrockRuntimeClient = _AWS.create_client(
    "bedrock-runtime",
    config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10),
)
SEARCHER = Searcher(
    CFG,
    bedrock=BEDROCK,
    s3vectors=S3VECTORS,
    s3=S3,
    index=IndexInfo(CFG.vector_bucket_name, CFG.index_name, CFG.dimension, CFG.distance_metric),
    spelling=API_SPELLING,
    allowed_buckets=frozenset({CFG.source_bucket_name}),
    max_attempts=3,
    check_empty=False,
)


def presign(bucket: str, key: str) -> str:
    url: str = S3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=CFG.search_presign_seconds
    )
    return url


API = SearchApi(CFG, SEARCHER, presign)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics(raise_on_empty_metrics=False)
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    calls_before = SEARCHER.model_calls
    try:
        answer = API.handle(event)
    except Exception:
        logger.exception("search request failed")
        answer = error_answer(500, "internal_error", "the search failed unexpectedly; see the logs")
    calls = SEARCHER.model_calls - calls_before
    metrics.add_metric(name=METRICS.search_model_calls, unit=MetricUnit.Count, value=calls)
    error = answer.body.get("error") or {}
    logger.info(
        f"{event.get('routeKey')}: {answer.status}",
        extra={
            "route": event.get("routeKey"),
            "status": answer.status,
            "error_code": error.get("code"),
            "model_calls": calls,
        },
    )
    return answer.as_lambda_response()
