"""Fault injection at the local cloud's network edge (never inside ``functions/``).

A :class:`Faults` object holds rules; the front server asks it, for each Bedrock, S3
Vectors or S3 object request, whether to delay it and whether to answer with an error
instead. S3 rules (``GetObject``, ``HeadObject``...; ``match`` is tested against the
request's bucket/key path) add latency or answer one of S3's own errors
(:data:`localcloud.services.errors.S3_ERRORS`, e.g. ``AccessDenied``) in S3's XML shape.
Rules fire for the next N matching calls, or for a fraction of them (seeded, so a test
run is repeatable), or for every matching call until cleared. ``match`` narrows a rule to
requests whose body contains a string (e.g. one object's key or vector key).

The same rules can be set over HTTP on a running local cloud (see ``front.py``)::

    curl -X POST -H 'X-Localcloud: 1' $ENDPOINT/_localcloud/faults -d '{"service":
         "bedrock", "error": "ThrottlingException", "count": 20}'

A Bedrock rule can name a ``kind`` (:data:`BEDROCK_ANSWERS`) instead of an error: the
answers Bedrock gives for a configuration problem or a rejected image, with its code,
status and wording, so the pipeline's handling of each is tested against the real text.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from localcloud.services.bedrock import on_demand_unsupported
from localcloud.services.errors import S3_ERRORS, S3Error, ServiceError

Service = Literal["bedrock", "s3vectors", "s3"]
SERVICES: tuple[str, ...] = ("bedrock", "s3vectors", "s3")

DEFAULT_MESSAGES: dict[str, str] = {
    "ThrottlingException": "Too many requests, please wait before trying again.",
    "TooManyRequestsException": "Request rate exceeded, please slow down.",
    "ServiceUnavailableException": "Service is temporarily unavailable (injected fault).",
    "InternalServerException": "An internal error occurred (injected fault).",
    "ModelTimeoutException": "The model timed out (injected fault).",
    "ModelNotReadyException": "The model is not ready to serve requests (injected fault).",
}

MODEL_ID_SLOT = "{model_id}"
"""In a fault's message: replaced by the model id the call named."""
BEDROCK_ANSWERS: dict[str, tuple[str, str]] = {
    # Bedrock's answer when model access was not granted (AccessDeniedException, 403).
    "model_not_enabled": (
        "AccessDeniedException",
        "You don't have access to the model with the specified model ID.",
    ),
    # A base model id where the Region offers the model only through a profile.
    "inference_profile_required": ("ValidationException", on_demand_unsupported(MODEL_ID_SLOT)),
    # An input error of an image-embedding InvokeModel call, in Bedrock's words (as
    # reported for amazon.titan-embed-image-v1, aws-samples/video-semantic-search-with-
    # aws-ai-ml-services#4): the image's fault, not the deployment's.
    "input_rejected": ("ValidationException", "400 Bad Request: Image exceeds max pixels allowed."),
}
"""Named Bedrock answers (``kind``): (exception name, message)."""


@dataclass
class FaultRule:
    """One rule. ``count`` None and ``fraction`` None means: every matching call."""

    service: Service
    error: str | None = None
    """Exception name to answer with, e.g. ``ThrottlingException``; None for latency only."""
    operation: str | None = None
    """``InvokeModel``, ``PutVectors``, ``QueryVectors``...; None for every operation."""
    count: int | None = None
    """Fire for the next ``count`` matching calls, then retire."""
    fraction: float | None = None
    """Fire for this fraction of matching calls (seeded random)."""
    latency_seconds: float = 0.0
    """Delay added to matching calls. For Bedrock it is the model's time: a call takes
    at least this long in all (the stand-in's own work counts towards it)."""
    match: str | None = None
    """Only requests whose body contains this string."""
    message: str | None = None
    kind: str | None = None
    """A named Bedrock answer from :data:`BEDROCK_ANSWERS`; sets ``error`` and ``message``."""
    id: int = 0
    fired: int = 0
    seen: int = 0
    _rng: random.Random = field(default_factory=random.Random, repr=False)

    def __post_init__(self) -> None:
        if self.service not in SERVICES:
            raise ValueError(f"fault service {self.service!r}: use one of {SERVICES}")
        if self.kind is not None:
            if self.service != "bedrock" or self.kind not in BEDROCK_ANSWERS:
                raise ValueError(
                    f"fault kind {self.kind!r}: use one of {sorted(BEDROCK_ANSWERS)} "
                    "with service bedrock"
                )
            if self.error is not None:
                raise ValueError("give a fault either kind or error, not both")
            self.error, default = BEDROCK_ANSWERS[self.kind]
            self.message = self.message or default
            self.operation = self.operation or "InvokeModel"
        if self.count is not None and self.count < 0:
            raise ValueError("fault count must be >= 0")
        if self.fraction is not None and not 0.0 <= self.fraction <= 1.0:
            raise ValueError("fault fraction must be between 0 and 1")
        if self.count is not None and self.fraction is not None:
            raise ValueError("give a fault either count or fraction, not both")
        if self.latency_seconds < 0:
            raise ValueError("fault latency_seconds must be >= 0")
        if self.error is None and not self.latency_seconds:
            raise ValueError("a fault needs an error, a latency, or both")
        if self.service == "s3" and self.error is not None:
            if self.error not in S3_ERRORS:
                raise ValueError(
                    f"fault error {self.error!r} on service s3: use one of {sorted(S3_ERRORS)}"
                )
            self.message = self.message or S3_ERRORS[self.error][1]

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.fired >= self.count

    def public(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_rng", None)
        return data


@dataclass(frozen=True)
class Decision:
    delay: float
    error: ServiceError | None


class Faults:
    """Thread-safe rule set shared by the front server's request threads."""

    def __init__(self, seed: int = 1) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()
        self._seed = seed
        self._next_id = 1
        self.injected: dict[str, int] = {}
        """Errors injected so far, by exception name."""

    # ------------------------------------------------------------------ rules

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = self._next_id
            self._next_id += 1
            rule._rng = random.Random(self._seed * 1_000_003 + rule.id)
            self._rules.append(rule)
        return rule

    def add_from_json(self, data: dict[str, Any]) -> FaultRule:
        allowed = {
            "service",
            "error",
            "operation",
            "count",
            "fraction",
            "latency_seconds",
            "match",
            "message",
            "kind",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault field(s) {sorted(unknown)}; known: {sorted(allowed)}")
        return self.add(FaultRule(**data))

    def throttle_bedrock(
        self, count: int | None = None, *, fraction: float | None = None, match: str | None = None
    ) -> FaultRule:
        """Bedrock answers ``ThrottlingException`` to the next ``count`` calls (or a fraction)."""
        return self.add(
            FaultRule(
                "bedrock",
                "ThrottlingException",
                "InvokeModel",
                count=count,
                fraction=fraction,
                match=match,
            )
        )

    def bedrock_answer(
        self,
        kind: str,
        count: int | None = None,
        *,
        fraction: float | None = None,
        match: str | None = None,
    ) -> FaultRule:
        """Bedrock answers matching InvokeModel calls with a named answer (``BEDROCK_ANSWERS``):
        ``model_not_enabled``, ``inference_profile_required`` or ``input_rejected``."""
        return self.add(
            FaultRule("bedrock", kind=kind, count=count, fraction=fraction, match=match)
        )

    def bedrock_latency(self, seconds: float) -> FaultRule:
        """Every InvokeModel call takes at least ``seconds`` (a model's latency)."""
        return self.add(FaultRule("bedrock", None, "InvokeModel", latency_seconds=seconds))

    def latency(self, service: Service, operation: str | None, seconds: float) -> FaultRule:
        """Every matching call of ``service`` (``operation`` None: any) waits ``seconds``."""
        return self.add(FaultRule(service, None, operation, latency_seconds=seconds))

    def s3vectors_error(
        self,
        operation: str | None = None,
        error: str = "ServiceUnavailableException",
        *,
        count: int | None = None,
        fraction: float | None = None,
        match: str | None = None,
    ) -> FaultRule:
        """S3 Vectors answers ``error`` to matching calls of ``operation`` (None: any)."""
        return self.add(
            FaultRule("s3vectors", error, operation, count=count, fraction=fraction, match=match)
        )

    def s3_error(
        self,
        operation: str | None = "GetObject",
        error: str = "AccessDenied",
        *,
        count: int | None = None,
        fraction: float | None = None,
        match: str | None = None,
    ) -> FaultRule:
        """S3 answers ``error`` (one of ``S3_ERRORS``) to matching calls of ``operation``;
        ``match`` is tested against the request's ``/bucket/key`` path."""
        return self.add(
            FaultRule("s3", error, operation, count=count, fraction=fraction, match=match)
        )

    def remove(self, rule_id: int) -> None:
        with self._lock:
            self._rules = [r for r in self._rules if r.id != rule_id]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.public() for r in self._rules]

    # ------------------------------------------------------------------ decisions

    def decide(self, service: str, operation: str, body: bytes, *, model_id: str = "") -> Decision:
        """What to do with one request: total added delay and the error to answer, if any.

        ``model_id`` (a Bedrock call's, as in its path) fills a message's ``{model_id}``.
        """
        delay = 0.0
        error: ServiceError | None = None
        with self._lock:
            if not self._rules:
                return Decision(0.0, None)
            text: str | None = None
            for rule in self._rules:
                if rule.service != service or rule.exhausted:
                    continue
                if rule.operation is not None and rule.operation != operation:
                    continue
                if rule.match is not None:
                    if text is None:
                        text = body.decode("utf-8", errors="replace")
                    if rule.match not in text:
                        continue
                rule.seen += 1
                if rule.error is not None and error is not None and not rule.latency_seconds:
                    continue  # another rule answers this call: keep this one for the next
                if rule.fraction is not None and rule._rng.random() >= rule.fraction:
                    continue
                rule.fired += 1
                delay += rule.latency_seconds
                if rule.error is not None and error is None:
                    message = rule.message or DEFAULT_MESSAGES.get(
                        rule.error, f"Injected fault: {rule.error}."
                    )
                    message = message.replace(MODEL_ID_SLOT, unquote(model_id))
                    shape = S3Error if rule.service == "s3" else ServiceError
                    error = shape(rule.error, message)
                    self.injected[rule.error] = self.injected.get(rule.error, 0) + 1
            self._rules = [r for r in self._rules if not r.exhausted]
        return Decision(delay, error)


__all__ = ["BEDROCK_ANSWERS", "DEFAULT_MESSAGES", "Decision", "FaultRule", "Faults"]
