"""The embedding models the pipeline can use on Bedrock, what each accepts, and model ids.

A configured ``model_id`` is either a foundation model's id or a cross-Region inference
profile's (``eu.twelvelabs.marengo-embed-3-0-v1:0``): some Regions offer a model only
that way. :func:`parse_model_id` is the one reader of that id; the stack grants IAM from
it and the embedder invokes ``ModelRef.model_id`` while the spec comes from the base id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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
    text_max_distance: float = 0.8
    """Default relevance cut for a text query (cosine distance): beyond it a result is a
    weak match. 0.8 is what the AWS blog's search GUI uses for Nova text queries."""
    image_max_distance: float = 0.5
    """Default relevance cut for an image query or "more like this": image-to-image
    distances run much closer than text-to-image ones, so the cut is tighter."""


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

INFERENCE_PROFILE_PREFIXES: tuple[str, ...] = (
    "us", "us-gov", "eu", "apac", "jp", "au", "ca", "global",
)  # fmt: skip
"""Prefixes of Bedrock's system-defined cross-Region inference profiles: geographic ones
route within that geography, ``global`` to any commercial Region. A profile's id is
``<prefix>.<foundation model id>``."""


class UnknownModelError(ValueError):
    """A model id the pipeline does not know; the message lists what it accepts."""


@dataclass(frozen=True)
class ModelRef:
    """A configured model id and the model behind it."""

    model_id: str
    """The id as configured: what ``InvokeModel`` is called with (a profile id if any)."""
    profile: str | None
    """The inference profile's prefix (``eu``), or None for a foundation model id."""
    spec: ModelSpec

    @property
    def base_id(self) -> str:
        """The foundation model's id (the one its IAM ARN and vector metadata name)."""
        return self.spec.model_id

    @property
    def is_profile(self) -> bool:
        return self.profile is not None


def parse_model_id(model_id: str) -> ModelRef:
    """Read a foundation model id or a cross-Region inference profile id."""
    if model_id in MODELS:
        return ModelRef(model_id, None, MODELS[model_id])
    prefix, _, base = model_id.partition(".")
    if prefix in INFERENCE_PROFILE_PREFIXES and base in MODELS:
        return ModelRef(model_id, prefix, MODELS[base])
    raise UnknownModelError(
        f"{model_id!r} is not a model the pipeline knows; allowed values: "
        + ", ".join(MODELS)
        + ", each also as an inference profile id with one of the prefixes "
        + ", ".join(f"{p}." for p in INFERENCE_PROFILE_PREFIXES)
    )


__all__ = [
    "INFERENCE_PROFILE_PREFIXES",
    "MARENGO_3",
    "MODELS",
    "NOVA_MME",
    "ModelFamily",
    "ModelRef",
    "ModelSpec",
    "UnknownModelError",
    "parse_model_id",
]
