"""Bedrock Runtime ``InvokeModel`` for the embedding models, answered by the stand-in model.

The request is validated as strictly as the service documents it (Nova Multimodal
Embeddings' synchronous schema; TwelveLabs Marengo Embed 3.0's text and image inputs),
and the answer has the real response shape. Errors use Bedrock's wording where it is
known ("Malformed input request: ..., please reformat your input and try again.").
Only the numbers differ: they come from :mod:`localcloud.services.standin_model`, not from Nova.

Where the documentation is silent, this side is stricter rather than looser (a declared
image ``format`` that does not match the bytes is rejected; unknown fields are rejected),
so a client bug surfaces here instead of in AWS.

The model id is checked against the caller's Region (the SigV4 scope) as Bedrock does:
:data:`INVOKE_OFFERS` says where each model answers on demand and which inference
profiles can be called from where, so a wrong id or a base id where only a profile is
offered fails here as it would in AWS.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from imgsearch.limits import LIMITS
from imgsearch.models import MARENGO_3, NOVA_MME, ModelSpec, UnknownModelError, parse_model_id
from localcloud.services import standin_model
from localcloud.services.errors import ServiceError, validation

ReadS3 = Callable[[str, str], bytes]
"""``read_s3(bucket, key)`` -> object bytes; raises ServiceError if it cannot be read."""

NOVA_SCHEMA_VERSION = "nova-multimodal-embed-v1"
NOVA_PURPOSES = (
    "GENERIC_INDEX",
    "GENERIC_RETRIEVAL",
    "TEXT_RETRIEVAL",
    "IMAGE_RETRIEVAL",
    "VIDEO_RETRIEVAL",
    "DOCUMENT_RETRIEVAL",
    "AUDIO_RETRIEVAL",
    "CLASSIFICATION",
    "CLUSTERING",
)
NOVA_IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
NOVA_DETAIL_LEVELS = ("STANDARD_IMAGE", "DOCUMENT_IMAGE")
NOVA_TRUNCATION = ("START", "END", "NONE")
NOVA_DEFAULT_DIMENSION = 3072
"""What Nova answers when ``embeddingDimension`` is left out."""
MARENGO_SYNC_INPUTS = ("text", "image")

ON_DEMAND = "on-demand"
"""In :data:`INVOKE_OFFERS`: the foundation model's own id answers in that Region."""
INVOKE_OFFERS: dict[str, dict[str, frozenset[str]]] = {
    # Bedrock User Guide, "TwelveLabs Marengo Embed 3.0" (model-parameters-marengo-3),
    # InvokeModel: US East (N. Virginia) foundation model and inference profile; Europe
    # (Ireland) inference profile only; Asia Pacific (Seoul) foundation model only.
    MARENGO_3.model_id: {
        "us-east-1": frozenset({ON_DEMAND, "us"}),
        "eu-west-1": frozenset({"eu"}),
        "ap-northeast-2": frozenset({ON_DEMAND}),
    },
    # Nova 2 User Guide, "Core inference": amazon.nova-2-multimodal-embeddings-v1:0,
    # launched in US East (N. Virginia); us. profile ids are in use there.
    NOVA_MME.model_id: {"us-east-1": frozenset({ON_DEMAND, "us"})},
}
"""Where ``InvokeModel`` answers for each model: by source Region, :data:`ON_DEMAND`
and the prefixes of the inference profiles callable from there (a profile routes
within its geography, so ``eu.`` is callable only from EU Regions). Anything else
is "The provided model identifier is invalid."."""

INVALID_MODEL_ID = "The provided model identifier is invalid."
_ARN = re.compile(
    r"^arn:aws[-a-z]*:bedrock:(?P<region>[a-z0-9-]*):(?:\d{12})?:"
    r"(?:foundation-model|inference-profile)/(?P<id>.+)$"
)
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(.+)$")


def on_demand_unsupported(model_id: str) -> str:
    """Bedrock's message for a base model id where the Region offers only a profile."""
    return (
        f"Invocation of model ID {model_id} with on-demand throughput isn't supported. "
        "Retry your request with the ID or ARN of an inference profile that contains "
        "this model."
    )


def resolve_model(model_id: str, region: str) -> ModelSpec:
    """The model behind an id or ARN, if ``region`` can invoke it that way; else the
    ``ValidationException`` Bedrock answers."""
    raw = unquote(model_id)
    if m := _ARN.match(raw):
        if m.group("region") not in ("", region):
            raise validation(INVALID_MODEL_ID)
        raw = m.group("id")
    try:
        ref = parse_model_id(raw)
    except UnknownModelError:
        raise validation(INVALID_MODEL_ID) from None
    offers = INVOKE_OFFERS.get(ref.base_id, {}).get(region, frozenset())
    if ref.profile is not None and ref.profile in offers:
        return ref.spec
    if ref.profile is None and ON_DEMAND in offers:
        return ref.spec
    if ref.profile is None and offers:
        raise validation(on_demand_unsupported(unquote(model_id)))
    raise validation(INVALID_MODEL_ID)


def _malformed(path: str, problem: str) -> ServiceError:
    return validation(
        f"Malformed input request: #{path}: {problem}, please reformat your input and try again."
    )


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _malformed(path, f"expected type: JSONObject, found: {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int | float):
        return "Number"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "JSONArray"
    return "JSONObject"


def _only_keys(obj: dict[str, Any], path: str, allowed: tuple[str, ...]) -> None:
    for key in obj:
        if key not in allowed:
            raise _malformed(path, f"extraneous key [{key}] is not permitted")


def _required(obj: dict[str, Any], path: str, key: str) -> Any:
    if key not in obj:
        raise _malformed(path, f"required key [{key}] not found")
    return obj[key]


def _enum(value: Any, path: str, allowed: tuple[Any, ...]) -> Any:
    if value not in allowed or isinstance(value, bool):
        raise _malformed(path, f"{value} is not a valid enum value")
    return value


def _string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _malformed(path, f"expected type: String, found: {_json_type(value)}")
    return value


def _parse_body(body: bytes) -> dict[str, Any]:
    if len(body) > LIMITS.invoke_model_max_body_bytes:
        raise validation(
            f"Input is too long: the request body is {len(body)} bytes; "
            f"InvokeModel accepts at most {LIMITS.invoke_model_max_body_bytes} bytes."
        )
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise validation(f"Malformed input request: body is not valid JSON ({exc})") from exc
    return _object(data, "")


def _b64(value: Any, path: str) -> bytes:
    text = _string(value, path)
    if not text:
        raise _malformed(path, "expected minLength: 1, actual: 0")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed(path, f"string is not valid base64 ({exc})") from exc


def _s3_location(value: Any, path: str, read_s3: ReadS3, max_bytes: int) -> bytes:
    loc = _object(value, path)
    _only_keys(loc, path, ("uri", "bucketOwner"))
    uri = _string(_required(loc, path, "uri"), path + "/uri")
    m = _S3_URI.match(uri)
    if not m:
        raise _malformed(path + "/uri", f"string [{uri}] does not match pattern s3://bucket/key")
    owner = loc.get("bucketOwner")
    if owner is not None and not re.fullmatch(r"\d{12}", _string(owner, path + "/bucketOwner")):
        raise _malformed(path + "/bucketOwner", f"string [{owner}] is not a 12-digit account id")
    data = read_s3(m.group(1), m.group(2))
    if len(data) > max_bytes:
        raise validation(
            f"The object at {uri} is {len(data)} bytes; the model accepts at most {max_bytes}."
        )
    return data


def _check_image(spec: ModelSpec, data: bytes, declared: str | None, limit: int) -> bytes:
    if len(data) > limit:
        raise validation(f"The image is {len(data)} bytes; the model accepts at most {limit}.")
    try:
        decoded = standin_model.decode_image(data)
    except standin_model.ImageDecodeError as exc:
        raise validation(f"Unable to process the provided image: {exc}") from exc
    if declared is not None and decoded.format != declared:
        raise validation(
            f"The provided image format '{declared}' does not match the image data, "
            f"which is '{decoded.format}'."
        )
    if decoded.format not in spec.image_formats:
        raise validation(
            f"Unsupported image format '{decoded.format}'; {spec.model_id} accepts "
            f"{', '.join(spec.image_formats)}."
        )
    return data


# --------------------------------------------------------------------------- Nova


def invoke_nova(spec: ModelSpec, body: bytes, read_s3: ReadS3) -> dict[str, Any]:
    """Validate a Nova MME synchronous request and answer ``{"embeddings": [...]}``."""
    req = _parse_body(body)
    _only_keys(req, "", ("schemaVersion", "taskType", "singleEmbeddingParams"))
    if "schemaVersion" in req:
        _enum(req["schemaVersion"], "/schemaVersion", (NOVA_SCHEMA_VERSION,))
    task = _required(req, "", "taskType")
    if task == "SEGMENTED_EMBEDDING":
        raise validation(
            "Malformed input request: taskType SEGMENTED_EMBEDDING is only supported by "
            "StartAsyncInvoke, please reformat your input and try again."
        )
    _enum(task, "/taskType", ("SINGLE_EMBEDDING",))
    params = _object(_required(req, "", "singleEmbeddingParams"), "/singleEmbeddingParams")
    path = "/singleEmbeddingParams"
    _only_keys(
        params,
        path,
        ("embeddingPurpose", "embeddingDimension", "text", "image", "audio", "video"),
    )
    _enum(_required(params, path, "embeddingPurpose"), path + "/embeddingPurpose", NOVA_PURPOSES)
    dimension = params.get("embeddingDimension", NOVA_DEFAULT_DIMENSION)
    _enum(dimension, path + "/embeddingDimension", spec.dimensions)
    modalities = [m for m in ("text", "image", "audio", "video") if m in params]
    if len(modalities) != 1:
        raise _malformed(
            path, f"exactly one of [text, image, audio, video] is required, found {modalities}"
        )
    modality = modalities[0]
    if modality in ("audio", "video"):
        raise validation(
            f"The local cloud's stand-in model embeds text and images only, not {modality}."
        )
    if modality == "text":
        text_obj = _object(params["text"], path + "/text")
        _only_keys(text_obj, path + "/text", ("truncationMode", "value", "source"))
        mode = _enum(
            _required(text_obj, path + "/text", "truncationMode"),
            path + "/text/truncationMode",
            NOVA_TRUNCATION,
        )
        if ("value" in text_obj) == ("source" in text_obj):
            raise _malformed(path + "/text", "exactly one of [value, source] is required")
        if "value" in text_obj:
            text = _string(text_obj["value"], path + "/text/value")
        else:
            source = _object(text_obj["source"], path + "/text/source")
            _only_keys(source, path + "/text/source", ("s3Location",))
            raw = _s3_location(
                _required(source, path + "/text/source", "s3Location"),
                path + "/text/source/s3Location",
                read_s3,
                spec.max_image_bytes,
            )
            text = raw.decode("utf-8", errors="replace")
        if not text:
            raise _malformed(path + "/text/value", "expected minLength: 1, actual: 0")
        entry: dict[str, Any] = {"embeddingType": "TEXT"}
        if len(text) > spec.max_text_chars:
            if mode == "NONE":
                raise validation(
                    f"Input text is {len(text)} characters, over the model's limit of "
                    f"{spec.max_text_chars}, and truncationMode is NONE."
                )
            text = text[: spec.max_text_chars] if mode == "END" else text[-spec.max_text_chars :]
            entry["truncatedCharLength"] = len(text)
        entry["embedding"] = standin_model.embed_text(text, dimension, spec.family)
        return {"embeddings": [entry]}

    image = _object(params["image"], path + "/image")
    ipath = path + "/image"
    _only_keys(image, ipath, ("format", "source", "detailLevel"))
    declared = _enum(_required(image, ipath, "format"), ipath + "/format", NOVA_IMAGE_FORMATS)
    if "detailLevel" in image:
        _enum(image["detailLevel"], ipath + "/detailLevel", NOVA_DETAIL_LEVELS)
    source = _object(_required(image, ipath, "source"), ipath + "/source")
    _only_keys(source, ipath + "/source", ("bytes", "s3Location"))
    if ("bytes" in source) == ("s3Location" in source):
        raise _malformed(ipath + "/source", "exactly one of [bytes, s3Location] is required")
    if "bytes" in source:
        data = _check_image(
            spec, _b64(source["bytes"], ipath + "/source/bytes"), declared, spec.max_image_bytes
        )
    else:
        data = _check_image(
            spec,
            _s3_location(
                source["s3Location"], ipath + "/source/s3Location", read_s3, spec.max_image_bytes
            ),
            declared,
            spec.max_image_bytes,
        )
    vector = standin_model.embed_image(data, dimension, spec.family)
    return {"embeddings": [{"embeddingType": "IMAGE", "embedding": vector}]}


# --------------------------------------------------------------------------- Marengo


def invoke_marengo(spec: ModelSpec, body: bytes, read_s3: ReadS3) -> dict[str, Any]:
    """Validate a Marengo Embed 3.0 synchronous request and answer ``{"data": [...]}``."""
    req = _parse_body(body)
    input_type = _required(req, "", "inputType")
    if input_type in ("video", "audio"):
        raise validation(
            f"inputType '{input_type}' is only supported by StartAsyncInvoke for this model."
        )
    _enum(input_type, "/inputType", MARENGO_SYNC_INPUTS)
    _only_keys(req, "", ("inputType", "text", "image"))
    if input_type == "text":
        text_obj = _object(_required(req, "", "text"), "/text")
        _only_keys(text_obj, "/text", ("inputText",))
        text = _string(_required(text_obj, "/text", "inputText"), "/text/inputText")
        if not text:
            raise _malformed("/text/inputText", "expected minLength: 1, actual: 0")
        if len(text) > spec.max_text_chars:
            raise validation(
                f"Input text is {len(text)} characters; the model accepts at most "
                f"{spec.max_text_chars}."
            )
        vector = standin_model.embed_text(text, spec.default_dimension, spec.family)
        return {"data": [{"embedding": vector}]}
    image = _object(_required(req, "", "image"), "/image")
    _only_keys(image, "/image", ("mediaSource",))
    media = _object(_required(image, "/image", "mediaSource"), "/image/mediaSource")
    _only_keys(media, "/image/mediaSource", ("base64String", "s3Location"))
    if ("base64String" in media) == ("s3Location" in media):
        raise _malformed("/image/mediaSource", "exactly one of [base64String, s3Location]")
    if "base64String" in media:
        data = _b64(media["base64String"], "/image/mediaSource/base64String")
    else:
        data = _s3_location(
            media["s3Location"], "/image/mediaSource/s3Location", read_s3, spec.max_image_bytes
        )
    _check_image(spec, data, None, spec.max_image_bytes)
    vector = standin_model.embed_image(data, spec.default_dimension, spec.family)
    return {"data": [{"embedding": vector}]}


def invoke_model(
    model_id: str,
    body: bytes,
    read_s3: ReadS3,
    *,
    region: str,
    content_type: str | None = None,
    accept: str | None = None,
) -> dict[str, Any]:
    """Answer one ``InvokeModel`` call from ``region``, or raise :class:`ServiceError`
    as Bedrock would."""
    spec = resolve_model(model_id, region)
    for name, value in (("contentType", content_type), ("accept", accept)):
        if value and value.split(";")[0].strip() not in ("application/json", "*/*"):
            raise validation(f"{name} {value!r} is not supported; use application/json.")
    if spec.family == "nova":
        return invoke_nova(spec, body, read_s3)
    return invoke_marengo(spec, body, read_s3)


__all__ = [
    "INVALID_MODEL_ID",
    "INVOKE_OFFERS",
    "invoke_marengo",
    "invoke_model",
    "invoke_nova",
    "on_demand_unsupported",
    "resolve_model",
]
