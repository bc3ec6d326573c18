"""The pipeline's one typed configuration.

Every name, dimension, model id, limit and price the project uses is defined
here once. The CDK stack reads it from ``cdk.json`` context (``-c key=value``
overrides), turns it into the Lambda environment with :meth:`PipelineConfig.to_lambda_env`,
and the Lambdas read it back with :meth:`PipelineConfig.from_env`. Scripts and the
local cloud call :func:`load_config`. This module is pure Python (no AWS imports) so
it runs inside the Lambda asset, the CDK app and the scripts alike.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

ENV_PREFIX = "IMGSEARCH_"
"""Every config field travels to the Lambdas as ``IMGSEARCH_<FIELD_NAME>``."""

ROUTER_HANDLER = "imgsearch.handlers.router.lambda_handler"
EMBEDDER_HANDLER = "imgsearch.handlers.embedder.lambda_handler"
"""Lambda handler strings (asset root ``functions/``): the stack and the local runtime."""


class ConfigError(ValueError):
    """Invalid configuration: the message names the key and what is allowed."""


# --------------------------------------------------------------------------- models


ModelFamily = Literal["nova", "marengo"]


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about one embedding model on Bedrock."""

    model_id: str
    family: ModelFamily
    dimensions: tuple[int, ...]
    """Output dimensions the model can produce."""
    default_dimension: int
    max_inline_image_bytes: int
    """Largest image sent as base64 inside the InvokeModel body (the body is capped
    at 25 MB and base64 inflates by 4/3, leaving room for the JSON around it)."""
    max_image_bytes: int
    """Largest image the model accepts at all (by S3 location above the inline cap)."""
    max_text_chars: int
    """Longest text query accepted."""
    image_formats: tuple[str, ...] = ("jpeg", "png", "gif", "webp")
    """Image formats the model accepts (names as ``imgsearch.images`` reports them)."""


NOVA_MME = ModelSpec(
    model_id="amazon.nova-2-multimodal-embeddings-v1:0",
    family="nova",
    dimensions=(256, 384, 1024, 3072),
    default_dimension=1024,
    # 18 MB, not MiB: base64 of 18 MiB is 25,165,824 bytes, over the 25 MB body cap.
    max_inline_image_bytes=18_000_000,
    max_image_bytes=50 * 1024 * 1024,
    max_text_chars=50_000,
)
MARENGO_3 = ModelSpec(
    model_id="twelvelabs.marengo-embed-3-0-v1:0",
    family="marengo",
    dimensions=(512,),
    default_dimension=512,
    max_inline_image_bytes=5 * 1024 * 1024,
    max_image_bytes=5 * 1024 * 1024,
    max_text_chars=500,
    image_formats=("jpeg", "png"),
)
MODELS: dict[str, ModelSpec] = {m.model_id: m for m in (NOVA_MME, MARENGO_3)}


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class ServiceLimits:
    """Hard limits of the AWS services, enforced in one place by the core."""

    # Amazon S3 Vectors (GA)
    put_vectors_max_vectors: int = 500
    put_vectors_max_request_bytes: int = 20 * 1024 * 1024
    filterable_metadata_max_bytes: int = 2 * 1024
    total_metadata_max_bytes: int = 40 * 1024
    metadata_max_keys: int = 50
    non_filterable_keys_max: int = 10
    vector_key_max_chars: int = 1024
    query_top_k_max: int = 100
    get_vectors_max_keys: int = 100
    delete_vectors_max_keys: int = 500
    # Amazon Bedrock
    invoke_model_max_body_bytes: int = 25 * 1000 * 1000
    # Amazon SQS
    sqs_batch_max_entries: int = 10
    sqs_message_max_bytes: int = 256 * 1024
    sqs_dedup_window_seconds: int = 300
    # AWS Lambda
    lambda_min_event_source_max_concurrency: int = 2


LIMITS = ServiceLimits()


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class MetricNames:
    """The pipeline's own CloudWatch metrics (EMF, namespace ``metrics_namespace``).

    All carry the dimension ``service`` (= ``service_name``); ``permanent_failures_by_reason``
    also carries ``reason``. The embedder emits them, the dashboard and ``status`` read them.
    """

    images_embedded: str = "ImagesEmbedded"
    vectors_deleted: str = "VectorsDeleted"
    unchanged_skipped: str = "UnchangedSkipped"
    stale_skipped: str = "StaleSkipped"
    permanent_failures: str = "PermanentFailures"
    permanent_failures_by_reason: str = "PermanentFailuresByReason"
    transient_retries: str = "TransientRetries"
    transient_failures: str = "TransientFailures"
    """Messages handed back to SQS for redelivery (throttling that outlasted the budget...)."""
    embedding_latency_ms: str = "EmbeddingLatency"
    bytes_read: str = "BytesRead"
    messages_routed: str = "MessagesRouted"


METRICS = MetricNames()


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True)
class Prices:
    """On-demand list prices (USD, us-east-1) used only for the backfill estimate."""

    bedrock_nova_image_embedding: float = 0.00006
    bedrock_marengo_image_embedding: float = 0.00007
    s3vectors_put_per_gb: float = 0.20
    s3vectors_put_min_billed_bytes: int = 128 * 1024
    """Each PutVectors request is billed at least this much logical data (so one vector
    per request costs like 128 KiB); reported by third-party analyses of S3 Vectors
    pricing and consistent with AWS's advice to batch puts for cost. Estimate only."""
    s3vectors_storage_per_gb_month: float = 0.06
    lambda_gb_second_arm64: float = 0.0000133334
    lambda_gb_second_x86_64: float = 0.0000166667
    lambda_per_million_requests: float = 0.20
    sqs_fifo_per_million_requests: float = 0.50
    s3_get_per_thousand: float = 0.0004


PRICES = Prices()


# --------------------------------------------------------------------------- config

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".gif", ".webp")
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
Architecture = Literal["arm64", "x86_64"]
InventoryFrequency = Literal["Daily", "Weekly"]
DistanceMetric = Literal["cosine", "euclidean"]
IndexPurpose = Literal["GENERIC_INDEX"]
QueryPurpose = Literal[
    "GENERIC_RETRIEVAL", "IMAGE_RETRIEVAL", "TEXT_RETRIEVAL", "DOCUMENT_RETRIEVAL"
]


@dataclass(frozen=True)
class PipelineConfig:
    """All settings of one deployment. Field names are the ``cdk.json`` context keys."""

    # naming
    stack_name: str = "ImageSearchPipeline"
    name_prefix: str = "imgsearch"
    source_bucket_name: str = ""
    """Empty: the stack creates the source bucket. Set: an existing bucket is imported."""
    source_bucket_versioned: bool = False
    vector_bucket_name: str = "imgsearch-vectors"
    index_name: str = "images"
    queue_name: str = "imgsearch-embed.fifo"
    dlq_name: str = "imgsearch-embed-dlq.fifo"
    router_dlq_name: str = "imgsearch-router-dlq"
    """Standard queue keeping S3 events the router failed on after Lambda's async retries."""
    # what is indexed
    prefixes: tuple[str, ...] = ("",)
    suffixes: tuple[str, ...] = IMAGE_SUFFIXES
    # the model
    model_id: str = NOVA_MME.model_id
    dimension: int = NOVA_MME.default_dimension
    distance_metric: DistanceMetric = "cosine"
    index_purpose: IndexPurpose = "GENERIC_INDEX"
    query_purpose: QueryPurpose = "IMAGE_RETRIEVAL"
    # the queue
    message_groups: int = 64
    visibility_timeout_seconds: int = 900
    max_receive_count: int = 5
    dlq_retention_days: int = 14
    queue_retention_days: int = 14
    """How long a message may wait in the main queue; a large backfill drains over days."""
    # the embedder
    architecture: Architecture = "arm64"
    embedder_memory_mb: int = 512
    embedder_timeout_seconds: int = 60
    embedder_concurrency: int = 5
    """Reserved concurrency of the embedder and the event source's maximum concurrency."""
    batch_size: int = 1
    embed_pool_size: int = 4
    """Images embedded concurrently inside one invocation when ``batch_size`` > 1."""
    router_memory_mb: int = 256
    router_timeout_seconds: int = 30
    # inventory and operations
    inventory_frequency: InventoryFrequency = "Daily"
    inventory_config_id: str = "imgsearch-inventory"
    inventory_retention_days: int = 14
    """Inventory reports older than this are expired; the backfill reads the latest."""
    log_retention_days: int = 30
    oldest_message_alarm_seconds: int = 3600
    service_name: str = "imgsearch"
    metrics_namespace: str = "ImageSearch"
    log_level: str = "INFO"
    region: str = ""
    # deploy-time values filled in by the stack (tokens), read by the Lambdas
    queue_url: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ derived

    @property
    def model(self) -> ModelSpec:
        return MODELS[self.model_id]

    @property
    def non_filterable_metadata_keys(self) -> tuple[str, ...]:
        """Metadata keys declared non-filterable in the index (see ``vectors.py``)."""
        return ("s3_uri", "source_key_full")

    # ------------------------------------------------------------------ readers

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, strict: bool = True) -> PipelineConfig:
        """Build from context-like values (JSON types or ``-c key=value`` strings).

        Keys that look like CDK's own (containing ``:`` or starting with ``@``) are
        ignored; with ``strict`` any other unknown key is an error, so a typo in
        ``-c dimenson=3072`` fails instead of being silently dropped.
        """
        hints = get_type_hints(cls)
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            if key.startswith("@") or ":" in key:
                continue
            if key not in known:
                if strict:
                    raise ConfigError(
                        f"unknown config key {key!r}; known keys: {', '.join(sorted(known))}"
                    )
                continue
            kwargs[key] = _coerce(key, hints[key], raw)
        return cls(**kwargs)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipelineConfig:
        """Read the config the stack wrote into the Lambda environment."""
        env = os.environ if env is None else env
        values = {
            f.name: env[ENV_PREFIX + f.name.upper()]
            for f in fields(cls)
            if ENV_PREFIX + f.name.upper() in env
        }
        return cls.from_mapping(values)

    def to_lambda_env(self) -> dict[str, str]:
        """The Lambda environment: every field, plus the Powertools settings."""
        env = {ENV_PREFIX + f.name.upper(): _serialise(getattr(self, f.name)) for f in fields(self)}
        env.update(
            POWERTOOLS_SERVICE_NAME=self.service_name,
            POWERTOOLS_METRICS_NAMESPACE=self.metrics_namespace,
            POWERTOOLS_LOG_LEVEL=self.log_level,
        )
        return env

    def replace(self, **changes: Any) -> PipelineConfig:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def load_config(
    cdk_json: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """The config the stack would deploy: ``cdk.json`` context, then ``overrides``.

    Scripts and the local cloud use this so that they name the same resources as the
    stack. ``cdk_json`` defaults to ``$IMGSEARCH_CDK_JSON`` or the repository's file.
    """
    path = Path(cdk_json or os.environ.get("IMGSEARCH_CDK_JSON") or _default_cdk_json())
    values: dict[str, Any] = {}
    if path.is_file():
        try:
            values.update(json.loads(path.read_text()).get("context", {}))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    values.update(overrides or {})
    return PipelineConfig.from_mapping(values)


def _default_cdk_json() -> Path:
    return Path(__file__).resolve().parents[2] / "cdk.json"


# --------------------------------------------------------------------------- helpers


def _serialise(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)


def _coerce(key: str, hint: Any, raw: Any) -> Any:
    """Turn a context value into the field's type, naming the key on failure."""
    origin = getattr(hint, "__origin__", None)
    try:
        if hint is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("true", "1", "yes"):
                return True
            if text in ("false", "0", "no", ""):
                return False
            raise ValueError(raw)
        if hint is int:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if origin is tuple:
            if isinstance(raw, str):
                text = raw.strip()
                items = json.loads(text) if text.startswith("[") else text.split(",")
            else:
                items = list(raw)
            return tuple(str(i) for i in items)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config key {key!r}: cannot read {raw!r} as {_type_name(hint)}") from exc


def _type_name(hint: Any) -> str:
    if getattr(hint, "__origin__", None) is tuple:
        return "a list of strings (JSON list or comma-separated)"
    return getattr(hint, "__name__", str(hint))


def _allowed(key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ConfigError(
            f"config key {key!r}: {value!r} is not allowed; allowed values: "
            + ", ".join(str(a) for a in allowed)
        )


def _at_least(key: str, value: int, minimum: int, why: str = "") -> None:
    if value < minimum:
        raise ConfigError(f"config key {key!r}: {value} is below the minimum {minimum}{why}")


_NAME_RULES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "vector_bucket_name",
        re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"),
        "use 3-63 lowercase letters, digits and hyphens, starting and ending alphanumeric",
    ),
    (
        "index_name",
        re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
        "use 3-63 lowercase letters, digits, hyphens and dots, starting and ending alphanumeric",
    ),
    *(
        (
            key,
            re.compile(r"[A-Za-z0-9_-]{1,75}\.fifo"),
            "use up to 80 letters, digits, hyphens and underscores, ending in '.fifo'",
        )
        for key in ("queue_name", "dlq_name")
    ),
    (
        "router_dlq_name",
        re.compile(r"[A-Za-z0-9_-]{1,80}"),
        "use up to 80 letters, digits, hyphens and underscores",
    ),
)
"""Naming rules of S3 Vectors and SQS, checked here so a bad name fails synth, not deploy."""


def _validate(cfg: PipelineConfig) -> None:
    hints = get_type_hints(PipelineConfig)
    for f in fields(cfg):
        if getattr(hints[f.name], "__origin__", None) is Literal:
            _allowed(f.name, getattr(cfg, f.name), get_args(hints[f.name]))
    _allowed("model_id", cfg.model_id, tuple(MODELS))
    model = MODELS[cfg.model_id]
    if cfg.dimension not in model.dimensions:
        raise ConfigError(
            f"config key 'dimension': {cfg.dimension} is not a dimension {model.model_id} "
            f"produces; allowed values: {', '.join(map(str, model.dimensions))}"
        )
    _allowed("log_retention_days", cfg.log_retention_days, LOG_RETENTION_DAYS)
    _allowed("log_level", cfg.log_level, ("DEBUG", "INFO", "WARNING", "ERROR"))
    for key in ("queue_name", "dlq_name"):
        if not getattr(cfg, key).endswith(".fifo"):
            raise ConfigError(f"config key {key!r}: a FIFO queue name must end in '.fifo'")
    if cfg.router_dlq_name.endswith(".fifo"):
        raise ConfigError(
            "config key 'router_dlq_name': a Lambda dead-letter queue must be a standard "
            "queue; drop the '.fifo'"
        )
    for key, pattern, allowed in _NAME_RULES:
        if not pattern.fullmatch(getattr(cfg, key)):
            raise ConfigError(f"config key {key!r}: {getattr(cfg, key)!r} is not valid; {allowed}")
    if not 1 <= cfg.message_groups <= 100_000:
        raise ConfigError("config key 'message_groups': must be between 1 and 100000")
    if not 0 <= cfg.visibility_timeout_seconds <= 43_200:
        raise ConfigError("config key 'visibility_timeout_seconds': must be 0..43200 (12 hours)")
    if not 1 <= cfg.max_receive_count <= 1000:
        raise ConfigError("config key 'max_receive_count': must be between 1 and 1000")
    for key in ("dlq_retention_days", "queue_retention_days"):
        if not 1 <= getattr(cfg, key) <= 14:
            raise ConfigError(f"config key {key!r}: SQS keeps messages 1..14 days")
    _at_least("inventory_retention_days", cfg.inventory_retention_days, 1)
    if not 1 <= cfg.embedder_timeout_seconds <= 900:
        raise ConfigError("config key 'embedder_timeout_seconds': must be 1..900")
    _at_least(
        "embedder_concurrency",
        cfg.embedder_concurrency,
        LIMITS.lambda_min_event_source_max_concurrency,
        " (the SQS event source's maximum concurrency must be at least 2)",
    )
    if not 1 <= cfg.batch_size <= 10:
        raise ConfigError("config key 'batch_size': a FIFO event source takes 1..10")
    _at_least("embed_pool_size", cfg.embed_pool_size, 1)
    if not 128 <= cfg.embedder_memory_mb <= 10_240:
        raise ConfigError("config key 'embedder_memory_mb': must be 128..10240")
    if not 128 <= cfg.router_memory_mb <= 10_240:
        raise ConfigError("config key 'router_memory_mb': must be 128..10240")
    _at_least("oldest_message_alarm_seconds", cfg.oldest_message_alarm_seconds, 60)
    if not cfg.suffixes:
        raise ConfigError("config key 'suffixes': at least one suffix is needed")
    for s in cfg.suffixes:
        if not s.startswith("."):
            raise ConfigError(f"config key 'suffixes': {s!r} must start with '.'")
    if not cfg.prefixes:
        raise ConfigError("config key 'prefixes': use [\"\"] for the whole bucket")


__all__ = [
    "EMBEDDER_HANDLER",
    "IMAGE_SUFFIXES",
    "LIMITS",
    "MARENGO_3",
    "METRICS",
    "MODELS",
    "NOVA_MME",
    "PRICES",
    "ROUTER_HANDLER",
    "ConfigError",
    "MetricNames",
    "ModelSpec",
    "PipelineConfig",
    "Prices",
    "ServiceLimits",
    "load_config",
]
