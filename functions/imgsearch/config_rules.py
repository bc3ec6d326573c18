"""The rules of AWS a deployment's settings must keep, as checks of plain values.

Names S3 Vectors and SQS accept, KMS key ARNs, and how the SQS event source, the
queue's visibility timeout and the embedder's reserved concurrency must relate, are
checked when :class:`imgsearch.config.PipelineConfig` is built, so a bad value fails
synth (or a script) instead of a deploy. Each check returns the problem (naming the key
and what is allowed) or ``None``; the config raises it as a ``ConfigError``, as it does
for :meth:`~imgsearch.api_settings.SearchApiSettings.search_api_problem`. Pure:
standard library only (the Lambda asset ships it with the config).
"""

from __future__ import annotations

import re

from imgsearch.limits import LIMITS

LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
    1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
"""The retention periods CloudWatch Logs accepts."""

VISIBILITY_TIMEOUT_FACTOR = 6
"""AWS's rule for an SQS event source: visibility timeout >= 6 x function timeout, so a
message is not handed out again while throttled retries of it are still going."""

FIFO_QUEUE_KEYS = ("queue_name", "dlq_name")

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
        for key in FIFO_QUEUE_KEYS
    ),
    (
        "router_dlq_name",
        re.compile(r"[A-Za-z0-9_-]{1,80}"),
        "use up to 80 letters, digits, hyphens and underscores",
    ),
)
"""Naming rules of S3 Vectors and SQS, in the order they are checked."""

NAMED_KEYS: tuple[str, ...] = tuple(key for key, _, _ in _NAME_RULES)
"""The config keys :func:`name_problem` knows the rule of."""

_ACCOUNT_ID = re.compile(r"[0-9]{12}")
_KMS_KEY_ARN = re.compile(r"arn:aws[-a-z0-9]*:kms:[-a-z0-9]+:[0-9]{12}:key/[-A-Za-z0-9]+")
"""A KMS key ARN (the pattern of S3 Vectors' ``kmsKeyArn``, API_S3VectorBuckets_Encryption
Configuration); IAM grants ``kms:Decrypt`` on key ARNs, so aliases are refused too."""


def not_allowed(key: str, value: object, allowed: tuple[object, ...]) -> str | None:
    if value in allowed:
        return None
    return f"config key {key!r}: {value!r} is not allowed; allowed values: " + ", ".join(
        str(a) for a in allowed
    )


def below(key: str, value: int, minimum: int, why: str = "") -> str | None:
    if value >= minimum:
        return None
    return f"config key {key!r}: {value} is below the minimum {minimum}{why}"


def fifo_suffix_problem(names: dict[str, str]) -> str | None:
    """The queues that must be FIFO end in ``.fifo``; the router's DLQ must not."""
    for key in FIFO_QUEUE_KEYS:
        if not names[key].endswith(".fifo"):
            return f"config key {key!r}: a FIFO queue name must end in '.fifo'"
    if names["router_dlq_name"].endswith(".fifo"):
        return (
            "config key 'router_dlq_name': a Lambda dead-letter queue must be a standard "
            "queue; drop the '.fifo'"
        )
    return None


def name_problem(names: dict[str, str]) -> str | None:
    """The first of ``names`` (keyed by :data:`NAMED_KEYS`) its service would refuse."""
    for key, pattern, allowed in _NAME_RULES:
        if not pattern.fullmatch(names[key]):
            return f"config key {key!r}: {names[key]!r} is not valid; {allowed}"
    return None


def visibility_timeout_problem(visibility_seconds: int, embedder_timeout: int) -> str | None:
    """The one check of this rule: the stack and the local cloud both build a config."""
    needed = VISIBILITY_TIMEOUT_FACTOR * embedder_timeout
    if visibility_seconds >= needed:
        return None
    return (
        "config keys 'visibility_timeout_seconds' and 'embedder_timeout_seconds': the "
        f"queue's visibility timeout ({visibility_seconds} s) must be at least "
        f"{VISIBILITY_TIMEOUT_FACTOR} x the embedder timeout "
        f"({embedder_timeout} s) = {needed} s; raise the first or lower "
        "the second"
    )


def reserved_concurrency_problem(reserved: int, maximum: int) -> str | None:
    """Below the event source's maximum, the pollers would invoke more copies than may
    run: the throttled messages return to the queue and count towards the DLQ."""
    if reserved < -1:
        return (
            f"config key 'reserved_concurrency': {reserved} is not allowed; use -1 (follow "
            "embedder_concurrency), 0 (reserve none) or a number of at least embedder_concurrency"
        )
    if 0 < reserved < maximum:
        fix = (
            f"set embedder_concurrency={reserved} too"
            if reserved >= LIMITS.lambda_min_event_source_max_concurrency
            else f"use at least {maximum}"
        )
        return (
            f"config key 'reserved_concurrency': {reserved} is below embedder_concurrency "
            f"({maximum}), so the event source would be throttled and messages would reach "
            f"the DLQ; {fix}, or reserved_concurrency=0 (reserve none)"
        )
    return None


def owner_and_keys_problem(owner: str, kms_keys: list[tuple[str, str]]) -> str | None:
    """The source bucket's owner is an account id; every ``(key, arn)`` is a KMS key ARN."""
    if owner and not _ACCOUNT_ID.fullmatch(owner):
        return (
            f"config key 'source_bucket_owner': {owner!r} is not an "
            "account id; use the 12 digits of the account that owns the source bucket, or "
            "leave it empty for the deploying account"
        )
    for key, arn in kms_keys:
        if not _KMS_KEY_ARN.fullmatch(arn):
            return (
                f"config key {key!r}: {arn!r} is not a KMS key ARN; use "
                "arn:aws:kms:<region>:<account>:key/<key-id> (not an alias or a key id)"
            )
    return None


__all__ = [
    "LOG_RETENTION_DAYS",
    "NAMED_KEYS",
    "VISIBILITY_TIMEOUT_FACTOR",
    "below",
    "fifo_suffix_problem",
    "name_problem",
    "not_allowed",
    "owner_and_keys_problem",
    "reserved_concurrency_problem",
    "visibility_timeout_problem",
]
