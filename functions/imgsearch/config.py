"""The pipeline's one typed configuration: the settings of one deployment.

Model specs live in ``imgsearch.models``, service limits in ``imgsearch.limits``, AWS's
rules on names, ARNs and timeouts in ``imgsearch.config_rules``, the names shared by the
stack and its readers in ``imgsearch.contract``, prices (estimates only, not in the Lambda
asset) in ``imgsearch.pricing``. The CDK stack reads it from ``cdk.json`` context
(``-c key=value`` overrides), turns it into the Lambda environment with
:meth:`PipelineConfig.to_lambda_env`, and the Lambdas read it back with
:meth:`PipelineConfig.from_env`. Scripts and the local cloud call :func:`load_config`.
Pure Python (no AWS imports): it runs in the Lambda asset, the CDK app and the scripts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from imgsearch import config_rules as rules
from imgsearch.api_settings import SearchApiSettings
from imgsearch.budget import RESERVE_SECONDS_MIN, min_timeout_seconds
from imgsearch.limits import LIMITS
from imgsearch.models import NOVA_MME, ModelRef, ModelSpec, UnknownModelError, parse_model_id

ENV_PREFIX = "IMGSEARCH_"
"""Every config field travels to the Lambdas as ``IMGSEARCH_<FIELD_NAME>``."""


class ConfigError(ValueError):
    """Invalid configuration: the message names the key and what is allowed."""


# --------------------------------------------------------------------------- config

IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".gif", ".webp")
Architecture = Literal["arm64", "x86_64"]
InventoryFrequency = Literal["Daily", "Weekly"]
DistanceMetric = Literal["cosine", "euclidean"]
IndexPurpose = Literal["GENERIC_INDEX"]
QueryPurpose = Literal[
    "GENERIC_RETRIEVAL", "IMAGE_RETRIEVAL", "TEXT_RETRIEVAL", "DOCUMENT_RETRIEVAL"
]


@dataclass(frozen=True)
class PipelineConfig(SearchApiSettings):
    """All settings of one deployment. Field names are the ``cdk.json`` context keys."""

    # naming
    stack_name: str = "ImageSearchPipeline"
    name_prefix: str = "imgsearch"
    source_bucket_name: str = ""
    """Empty: the stack creates the source bucket. Set: an existing bucket is imported."""
    source_bucket_versioned: bool = False
    source_bucket_owner: str = ""
    """The account that must own the source bucket (``ExpectedBucketOwner``, ``bucketOwner``,
    ``s3:ResourceAccount``); empty: the deploying one (the stack sets it in the environment)."""
    source_kms_key_arn: tuple[str, ...] = ()
    """Customer-managed KMS keys the source objects are encrypted with (SSE-KMS): the
    embedder may ``kms:Decrypt`` with them through S3. Empty: SSE-S3 or no grant needed."""
    kms_key_arn: str = ""
    """A customer-managed KMS key for the vector bucket and the log groups; empty: AWS's."""
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
    """A foundation model id, or a cross-Region inference profile id in front of one
    (``eu.twelvelabs.marengo-embed-3-0-v1:0``) where the Region offers it only that way."""
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
    """The event source's maximum concurrency (and, by default, the reserved concurrency)."""
    reserved_concurrency: int = -1
    """The embedder's reserved concurrency: -1 follows ``embedder_concurrency``; 0 reserves
    none (for accounts whose quota leaves nothing to reserve: Lambda keeps 10 unreserved),
    leaving the limit to the event source; N (at least ``embedder_concurrency``) reserves N."""
    batch_size: int = 1
    embed_pool_size: int = 4
    """Images embedded concurrently inside one invocation when ``batch_size`` > 1."""
    max_model_attempts_per_object: int = 20
    """InvokeModel attempts one message may cost over all its deliveries: a bounded price."""
    router_memory_mb: int = 256
    router_timeout_seconds: int = 30
    # inventory and operations
    inventory_frequency: InventoryFrequency = "Daily"
    inventory_config_id: str = "imgsearch-inventory"
    inventory_retention_days: int = 14
    """Inventory reports older than this are expired; the backfill reads the latest."""
    log_retention_days: int = 30
    oldest_message_alarm_seconds: int = 3600
    permanent_failures_alarm_threshold: int = 10
    """Alarm when more permanent failures than this happen in 5 minutes (a wave of them is
    a misconfiguration more often than bad images; 0 alarms on the first)."""
    model_failed_calls_alarm_threshold: int = 100
    """Alarm when more InvokeModel calls than this fail (throttled, client or server
    errors; Bedrock's own metrics for the model) in 5 minutes: a retry storm."""
    service_name: str = "imgsearch"
    metrics_namespace: str = "ImageSearch"
    log_level: str = "INFO"
    tracing: bool = False
    """X-Ray active tracing of the functions (Powertools' Tracer on botocore). Off by
    default: it puts the X-Ray SDK in every cold start (~30-60 ms of the embedder's
    import, ``bench_embedder``), grants ``xray:Put*`` on ``*`` and bills traces."""
    region: str = ""
    # deploy-time values filled in by the stack (tokens), read by the Lambdas
    queue_url: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ derived

    @property
    def model(self) -> ModelSpec:
        return self.model_ref.spec

    @property
    def model_ref(self) -> ModelRef:
        """``model_id`` read: the id to invoke, its inference profile if any, the model."""
        return parse_model_id(self.model_id)

    @property
    def embedder_reserved_concurrency(self) -> int:
        """The embedder's reserved concurrency to deploy; 0 means none."""
        if self.reserved_concurrency < 0:
            return self.embedder_concurrency
        return self.reserved_concurrency

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
        if not self.tracing:  # the handlers then never import the X-Ray SDK (handlers.tracing)
            env["POWERTOOLS_TRACE_DISABLED"] = "true"
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


def _check(problem: str | None) -> None:
    """A rule's problem (see :mod:`imgsearch.config_rules`) fails the config."""
    if problem:
        raise ConfigError(problem)


def _validate(cfg: PipelineConfig) -> None:
    hints = get_type_hints(PipelineConfig)
    for f in fields(cfg):
        if getattr(hints[f.name], "__origin__", None) is Literal:
            _check(rules.not_allowed(f.name, getattr(cfg, f.name), get_args(hints[f.name])))
    try:
        model = parse_model_id(cfg.model_id).spec
    except UnknownModelError as exc:
        raise ConfigError(f"config key 'model_id': {exc}") from exc
    if cfg.dimension not in model.dimensions:
        raise ConfigError(
            f"config key 'dimension': {cfg.dimension} is not a dimension {model.model_id} "
            f"produces; allowed values: {', '.join(map(str, model.dimensions))}"
        )
    _check(
        rules.not_allowed("log_retention_days", cfg.log_retention_days, rules.LOG_RETENTION_DAYS)
    )
    _check(rules.not_allowed("log_level", cfg.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")))
    names = {key: getattr(cfg, key) for key in rules.NAMED_KEYS}
    _check(rules.fifo_suffix_problem(names) or rules.name_problem(names))
    if not 1 <= cfg.message_groups <= 100_000:
        raise ConfigError("config key 'message_groups': must be between 1 and 100000")
    if not 0 <= cfg.visibility_timeout_seconds <= 43_200:
        raise ConfigError("config key 'visibility_timeout_seconds': must be 0..43200 (12 hours)")
    if not 1 <= cfg.max_receive_count <= 1000:
        raise ConfigError("config key 'max_receive_count': must be between 1 and 1000")
    for key in ("dlq_retention_days", "queue_retention_days"):
        if not 1 <= getattr(cfg, key) <= 14:
            raise ConfigError(f"config key {key!r}: SQS keeps messages 1..14 days")
    _check(rules.below("inventory_retention_days", cfg.inventory_retention_days, 1))
    if not 1 <= cfg.embedder_timeout_seconds <= 900:
        raise ConfigError("config key 'embedder_timeout_seconds': must be 1..900")
    _check(
        rules.below(
            "embedder_timeout_seconds",
            cfg.embedder_timeout_seconds,
            min_timeout_seconds(),
            f" (the embedder keeps at least {RESERVE_SECONDS_MIN:.0f} s in reserve to write "
            "vectors and answer SQS; a shorter timeout leaves no time for any message)",
        )
    )
    _check(
        rules.visibility_timeout_problem(
            cfg.visibility_timeout_seconds, cfg.embedder_timeout_seconds
        )
    )
    _check(
        rules.below(
            "embedder_concurrency",
            cfg.embedder_concurrency,
            LIMITS.lambda_min_event_source_max_concurrency,
            " (the SQS event source's maximum concurrency must be at least 2)",
        )
    )
    _check(rules.reserved_concurrency_problem(cfg.reserved_concurrency, cfg.embedder_concurrency))
    if not 1 <= cfg.batch_size <= 10:
        raise ConfigError("config key 'batch_size': a FIFO event source takes 1..10")
    _check(rules.below("embed_pool_size", cfg.embed_pool_size, 1))
    if not 128 <= cfg.embedder_memory_mb <= 10_240:
        raise ConfigError("config key 'embedder_memory_mb': must be 128..10240")
    if not 128 <= cfg.router_memory_mb <= 10_240:
        raise ConfigError("config key 'router_memory_mb': must be 128..10240")
    for key, minimum in _MINIMUMS:
        _check(rules.below(key, getattr(cfg, key), minimum))
    kms_keys = [("kms_key_arn", cfg.kms_key_arn)] if cfg.kms_key_arn else []
    kms_keys += [("source_kms_key_arn", arn) for arn in cfg.source_kms_key_arn]
    _check(rules.owner_and_keys_problem(cfg.source_bucket_owner, kms_keys))
    if not cfg.suffixes:
        raise ConfigError("config key 'suffixes': at least one suffix is needed")
    for s in cfg.suffixes:
        if not s.startswith("."):
            raise ConfigError(f"config key 'suffixes': {s!r} must start with '.'")
    if not cfg.prefixes:
        raise ConfigError("config key 'prefixes': use [\"\"] for the whole bucket")
    _check(cfg.search_api_problem())


_MINIMUMS: tuple[tuple[str, int], ...] = (
    ("oldest_message_alarm_seconds", 60),
    ("permanent_failures_alarm_threshold", 0),
    ("max_model_attempts_per_object", 1),
    ("model_failed_calls_alarm_threshold", 0),
)
"""Lower bounds of the alarm and attempt settings, checked in this order."""


__all__ = [
    "IMAGE_SUFFIXES",
    "Architecture",
    "ConfigError",
    "PipelineConfig",
    "load_config",
]
