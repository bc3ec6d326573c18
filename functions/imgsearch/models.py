"""The embedding models the pipeline can use on Bedrock, and what each accepts."""

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


__all__ = ["MARENGO_3", "MODELS", "NOVA_MME", "ModelFamily", "ModelSpec"]
