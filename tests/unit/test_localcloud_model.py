"""The local cloud's stand-in model and its Bedrock request validation.

The requests are built with the production client (``imgsearch.embeddings``) and the
answers parsed with it, so this also checks that both sides agree on the shapes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from imgsearch.embeddings import image_request, parse_response, text_request
from imgsearch.models import MARENGO_3, NOVA_MME, parse_model_id
from localcloud.samples import corrupt_jpeg, encode, photo, sample_set
from localcloud.services import standin_model
from localcloud.services.bedrock import invoke_model, resolve_model
from localcloud.services.errors import ServiceError

NOVA, MARENGO = NOVA_MME.model_id, MARENGO_3.model_id


def _no_s3(bucket: str, key: str) -> bytes:
    raise AssertionError(f"unexpected S3 read of s3://{bucket}/{key}")


def _invoke(
    model_id: str, body: Any, read_s3: Any = _no_s3, region: str = "us-east-1"
) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return invoke_model(model_id, raw, read_s3, region=region)


def _rejected(model_id: str, body: Any, read_s3: Any = _no_s3, region: str = "us-east-1") -> str:
    with pytest.raises(ServiceError) as err:
        _invoke(model_id, body, read_s3, region)
    assert err.value.code == "ValidationException"
    assert err.value.status == 400
    return err.value.message


@pytest.fixture(scope="module")
def coffee() -> bytes:
    return encode(photo("coffee", 256))


# --------------------------------------------------------------------------- the model


@pytest.mark.parametrize("dimension", NOVA_MME.dimensions)
def test_vectors_are_deterministic_unit_length_and_sized(coffee: bytes, dimension: int) -> None:
    a = standin_model.embed_image(coffee, dimension)
    b = standin_model.embed_image(coffee, dimension)
    assert a == b
    assert len(a) == dimension
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    t = standin_model.embed_text("red", dimension)
    assert len(t) == dimension and np.linalg.norm(t) == pytest.approx(1.0, abs=1e-6)


def test_transformed_copies_land_nearest_their_original() -> None:
    samples = sample_set(("coffee", "rocket", "camera", "retina"), max_side=256)
    vectors = np.array([standin_model.embed_image(s.data, 256) for s in samples])
    sims = vectors @ vectors.T
    for i, s in enumerate(samples):
        same = [sims[i, j] for j, o in enumerate(samples) if j != i and o.original == s.original]
        other = [sims[i, j] for j, o in enumerate(samples) if o.original != s.original]
        assert min(same) > max(other), s.key


@pytest.mark.parametrize(("word", "photo_name"), [("red", "retina"), ("blue", "rocket")])
def test_colour_words_find_images_of_that_colour(word: str, photo_name: str) -> None:
    samples = sample_set(("coffee", "rocket", "camera", "retina"), variants=(), max_side=256)
    vectors = np.array([standin_model.embed_image(s.data, 1024) for s in samples])
    query = np.array(standin_model.embed_text(f"a {word} thing", 1024))
    assert samples[int(np.argmax(vectors @ query))].original == photo_name


def test_synonyms_and_unknown_words() -> None:
    assert standin_model.colour_words("Grey sky and a GOLDEN sun") == ["gray", "yellow"]
    assert standin_model.embed_text("grey", 256) == standin_model.embed_text("gray", 256)
    # No colour word: a fixed direction per text, different for different texts.
    assert standin_model.embed_text("wind turbine", 256) == standin_model.embed_text(
        "wind turbine", 256
    )
    assert standin_model.embed_text("wind turbine", 256) != standin_model.embed_text("cat", 256)


def test_corrupt_bytes_do_not_decode() -> None:
    with pytest.raises(standin_model.ImageDecodeError):
        standin_model.decode_image(corrupt_jpeg())
    with pytest.raises(standin_model.ImageDecodeError):
        standin_model.decode_image(b"GIF89a not really")


# --------------------------------------------------------------------------- Nova


@pytest.mark.parametrize("fmt", ["jpeg", "png", "gif", "webp"])
def test_nova_image_round_trip_with_the_production_client(fmt: str) -> None:
    img = photo("chelsea", 128)
    data = encode(img, {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP"}[fmt])
    body = image_request(
        NOVA_MME, purpose="GENERIC_INDEX", dimension=1024, image_format=fmt, data=data
    )
    answer = _invoke(NOVA, body)
    assert answer["embeddings"][0]["embeddingType"] == "IMAGE"
    vector = parse_response(NOVA_MME, json.dumps(answer), 1024)
    assert vector == standin_model.embed_image(data, 1024)


def test_nova_reads_s3_locations(coffee: bytes) -> None:
    reads: list[tuple[str, str]] = []

    def read(bucket: str, key: str) -> bytes:
        reads.append((bucket, key))
        return coffee

    body = image_request(
        NOVA_MME,
        purpose="GENERIC_INDEX",
        dimension=256,
        image_format="jpeg",
        s3_uri="s3://photos/a/b c.jpg",
        bucket_owner="123456789012",
    )
    answer = _invoke(NOVA, body, read)
    assert reads == [("photos", "a/b c.jpg")]
    assert parse_response(NOVA_MME, answer, 256) == standin_model.embed_image(coffee, 256)


def test_nova_text_round_trip() -> None:
    body = text_request(NOVA_MME, purpose="GENERIC_RETRIEVAL", dimension=384, text="blue sky")
    answer = _invoke(NOVA, body)
    assert answer["embeddings"][0]["embeddingType"] == "TEXT"
    assert parse_response(NOVA_MME, answer, 384) == standin_model.embed_text("blue sky", 384)


def _nova_image(coffee: bytes, **changes: Any) -> dict[str, Any]:
    body = image_request(
        NOVA_MME, purpose="GENERIC_INDEX", dimension=1024, image_format="jpeg", data=coffee
    )
    params = body["singleEmbeddingParams"]
    for path, value in changes.items():
        target = params
        *parents, leaf = path.split("__")
        for p in parents:
            target = target[p]
        if value is None:
            del target[leaf]
        else:
            target[leaf] = value
    return body


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"embeddingPurpose": "SEARCH"}, "embeddingPurpose: SEARCH is not a valid enum value"),
        ({"embeddingPurpose": None}, "required key [embeddingPurpose] not found"),
        ({"embeddingDimension": 512}, "embeddingDimension: 512 is not a valid enum value"),
        ({"image__format": "bmp"}, "format: bmp is not a valid enum value"),
        ({"image__format": "png"}, "does not match the image data"),
        ({"image__detailLevel": "HIGH"}, "detailLevel: HIGH is not a valid enum value"),
        ({"image__source__bytes": "not base64!"}, "not valid base64"),
        ({"image__source__bytes": ""}, "minLength"),
        ({"image__extra": 1}, "extraneous key [extra]"),
        ({"text": {"truncationMode": "END", "value": "x"}}, "exactly one of"),
    ],
)
def test_nova_rejects_malformed_requests(
    coffee: bytes, changes: dict[str, Any], fragment: str
) -> None:
    message = _rejected(NOVA, _nova_image(coffee, **changes))
    assert fragment in message
    assert message.startswith(("Malformed input request", "The provided image"))


def test_nova_rejects_bad_envelopes_and_bad_images(coffee: bytes) -> None:
    assert "taskType" in _rejected(NOVA, {"singleEmbeddingParams": {}})
    assert "StartAsyncInvoke" in _rejected(
        NOVA, {**_nova_image(coffee), "taskType": "SEGMENTED_EMBEDDING"}
    )
    assert "not valid JSON" in _rejected(NOVA, b"{nope")
    bad = _nova_image(coffee, image__source__bytes=base64.b64encode(corrupt_jpeg()).decode())
    assert "Unable to process the provided image" in _rejected(NOVA, bad)
    text = text_request(NOVA_MME, purpose="GENERIC_RETRIEVAL", dimension=256, text="x")
    del text["singleEmbeddingParams"]["text"]["truncationMode"]
    assert "truncationMode" in _rejected(NOVA, text)
    huge = b"{" + b" " * 25_000_001 + b"}"
    assert "at most 25000000 bytes" in _rejected(NOVA, huge)


def test_nova_text_truncation_modes() -> None:
    long_text = "red " * 20_000  # 80,000 characters, above the 50,000 limit
    body = text_request(NOVA_MME, purpose="GENERIC_RETRIEVAL", dimension=256, text="x")
    body["singleEmbeddingParams"]["text"]["value"] = long_text
    answer = _invoke(NOVA, body)
    assert answer["embeddings"][0]["truncatedCharLength"] == NOVA_MME.max_text_chars
    body["singleEmbeddingParams"]["text"]["truncationMode"] = "NONE"
    assert "truncationMode is NONE" in _rejected(NOVA, body)


def test_model_ids_arns_and_profiles_resolve() -> None:
    assert resolve_model(NOVA, "us-east-1") is NOVA_MME
    assert resolve_model(f"us.{NOVA}", "us-east-1") is NOVA_MME
    assert resolve_model(f"arn:aws:bedrock:us-east-1::foundation-model/{NOVA}", "us-east-1") is (
        NOVA_MME
    )
    profile_arn = f"arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.{MARENGO}"
    assert resolve_model(profile_arn, "eu-west-1") is MARENGO_3
    assert resolve_model(f"{MARENGO}".replace(":", "%3A"), "us-east-1") is MARENGO_3


INVALID = "The provided model identifier is invalid."
ON_DEMAND = (
    "Invocation of model ID {} with on-demand throughput isn't supported. Retry your "
    "request with the ID or ARN of an inference profile that contains this model."
)


@pytest.mark.parametrize(
    ("model_id", "region", "message"),
    [
        ("amazon.titan-embed-image-v1", "us-east-1", INVALID),  # a model we do not serve
        (f"eu.{NOVA}", "us-east-1", INVALID),  # eu. outside the EU
        (f"eu.{MARENGO}", "us-east-1", INVALID),
        (f"us.{MARENGO}", "eu-west-1", INVALID),  # us. outside the US
        (f"apac.{MARENGO}", "ap-northeast-2", INVALID),  # a profile that does not exist
        (f"eu.eu.{MARENGO}", "eu-west-1", INVALID),
        (NOVA, "eu-west-1", INVALID),  # not offered in the Region at all
        (MARENGO, "eu-west-1", ON_DEMAND.format(MARENGO)),  # only through a profile there
        (f"arn:aws:bedrock:eu-west-1::foundation-model/{MARENGO}", "eu-west-1", None),
    ],
)
def test_model_ids_are_checked_against_the_callers_region(
    coffee: bytes, model_id: str, region: str, message: str | None
) -> None:
    body = {"inputType": "text", "text": {"inputText": "red"}}
    expected = message or ON_DEMAND.format(f"arn:aws:bedrock:eu-west-1::foundation-model/{MARENGO}")
    assert _rejected(model_id, body, region=region) == expected


@pytest.mark.parametrize(
    ("model_id", "region"),
    [
        (NOVA, "us-east-1"),
        (f"us.{NOVA}", "us-east-1"),
        (MARENGO, "us-east-1"),
        (f"us.{MARENGO}", "us-east-1"),
        (f"eu.{MARENGO}", "eu-west-1"),
        (MARENGO, "ap-northeast-2"),
    ],
)
def test_offered_model_ids_answer(model_id: str, region: str) -> None:
    ref = parse_model_id(model_id)
    body = text_request(
        ref.spec, purpose="GENERIC_RETRIEVAL", dimension=ref.spec.default_dimension, text="red"
    )
    answer = _invoke(model_id, body, region=region)
    assert len(parse_response(ref.spec, answer, ref.spec.default_dimension)) > 0


# --------------------------------------------------------------------------- Marengo


def test_marengo_round_trip(coffee: bytes) -> None:
    body = image_request(
        MARENGO_3, purpose="GENERIC_INDEX", dimension=512, image_format="jpeg", data=coffee
    )
    assert parse_response(MARENGO_3, _invoke(MARENGO, body), 512) == standin_model.embed_image(
        coffee, 512, "marengo"
    )
    text = text_request(MARENGO_3, purpose="GENERIC_RETRIEVAL", dimension=512, text="green")
    answer = _invoke(MARENGO, text)
    assert parse_response(MARENGO_3, answer, 512) == standin_model.embed_text(
        "green", 512, "marengo"
    )
    # A different model: the same image does not give the same vector as Nova's.
    assert parse_response(MARENGO_3, answer, 512) != standin_model.embed_text("green", 512)


def test_marengo_validation(coffee: bytes) -> None:
    assert "StartAsyncInvoke" in _rejected(MARENGO, {"inputType": "video"})
    assert "inputText" in _rejected(MARENGO, {"inputType": "text", "text": {}})
    assert "at most 500" in _rejected(
        MARENGO, {"inputType": "text", "text": {"inputText": "x" * 501}}
    )
    gif = encode(photo("coffee", 64), "GIF")
    body = {
        "inputType": "image",
        "image": {"mediaSource": {"base64String": base64.b64encode(gif).decode()}},
    }
    assert "Unsupported image format 'gif'" in _rejected(MARENGO, body)
    assert "exactly one of" in _rejected(
        MARENGO, {"inputType": "image", "image": {"mediaSource": {}}}
    )
