"""Nova MME and Marengo request/response shapes, and the Bedrock edge's retry policy."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from imgsearch.aws_errors import backoff_delay
from imgsearch.embeddings import (
    Embedder,
    EmbeddingError,
    encode_request,
    image_request,
    parse_response,
    text_request,
)
from imgsearch.limits import LIMITS
from imgsearch.models import MARENGO_3, NOVA_MME, parse_model_id

# --------------------------------------------------------------------------- requests


def test_nova_inline_image_request() -> None:
    body = image_request(
        NOVA_MME, purpose="GENERIC_INDEX", dimension=1024, image_format="png", data=b"\x89PNG.."
    )
    assert body == {
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": "GENERIC_INDEX",
            "embeddingDimension": 1024,
            "image": {
                "format": "png",
                "source": {"bytes": base64.b64encode(b"\x89PNG..").decode()},
            },
        },
    }


def test_nova_s3_image_request_carries_bucket_owner() -> None:
    body = image_request(
        NOVA_MME,
        purpose="GENERIC_INDEX",
        dimension=3072,
        image_format="webp",
        s3_uri="s3://photos/a b.webp",
        bucket_owner="123456789012",
    )
    image = body["singleEmbeddingParams"]["image"]
    assert image == {
        "format": "webp",
        "source": {"s3Location": {"uri": "s3://photos/a b.webp", "bucketOwner": "123456789012"}},
    }
    assert body["singleEmbeddingParams"]["embeddingDimension"] == 3072


def test_nova_text_request() -> None:
    body = text_request(NOVA_MME, purpose="GENERIC_RETRIEVAL", dimension=256, text="wind turbine")
    assert body["singleEmbeddingParams"] == {
        "embeddingPurpose": "GENERIC_RETRIEVAL",
        "embeddingDimension": 256,
        "text": {"truncationMode": "END", "value": "wind turbine"},
    }


def test_marengo_requests() -> None:
    inline = image_request(
        MARENGO_3, purpose="GENERIC_INDEX", dimension=512, image_format="jpeg", data=b"\xff\xd8"
    )
    assert inline == {
        "inputType": "image",
        "image": {"mediaSource": {"base64String": base64.b64encode(b"\xff\xd8").decode()}},
    }
    by_s3 = image_request(
        MARENGO_3, purpose="GENERIC_INDEX", dimension=512, image_format="png", s3_uri="s3://b/k"
    )
    assert by_s3 == {
        "inputType": "image",
        "image": {"mediaSource": {"s3Location": {"uri": "s3://b/k"}}},
    }
    text = text_request(MARENGO_3, purpose="GENERIC_RETRIEVAL", dimension=512, text="a cat")
    assert text == {"inputType": "text", "text": {"inputText": "a cat"}}


def test_model_rejects_a_dimension_it_cannot_produce() -> None:
    with pytest.raises(EmbeddingError) as err:
        text_request(NOVA_MME, purpose="GENERIC_INDEX", dimension=512, text="x")
    assert not err.value.transient
    assert "256, 384, 1024, 3072" in err.value.detail


def test_marengo_does_not_take_gif_and_says_so() -> None:
    with pytest.raises(EmbeddingError) as err:
        image_request(MARENGO_3, purpose="X", dimension=512, image_format="gif", data=b"GIF89a")
    assert err.value.reason == "unsupported_format"
    assert not err.value.transient


def test_inline_bytes_above_the_limit_are_refused() -> None:
    big = b"\0" * (MARENGO_3.max_inline_image_bytes + 1)
    with pytest.raises(EmbeddingError) as err:
        image_request(MARENGO_3, purpose="X", dimension=512, image_format="jpeg", data=big)
    assert err.value.reason == "too_large"


@pytest.mark.parametrize("model", [NOVA_MME, MARENGO_3], ids=lambda m: m.family)
def test_largest_inline_image_fits_the_invoke_model_body(model: Any) -> None:
    body = image_request(
        model,
        purpose="GENERIC_INDEX",
        dimension=model.default_dimension,
        image_format="png",
        data=b"\0" * model.max_inline_image_bytes,
    )
    assert len(encode_request(body)) <= LIMITS.invoke_model_max_body_bytes


def test_exactly_one_image_source() -> None:
    with pytest.raises(EmbeddingError):
        image_request(NOVA_MME, purpose="X", dimension=256, image_format="jpeg")
    with pytest.raises(EmbeddingError):
        image_request(
            NOVA_MME, purpose="X", dimension=256, image_format="jpeg", data=b"x", s3_uri="s3://b/k"
        )


def test_text_too_long_or_empty_is_permanent() -> None:
    with pytest.raises(EmbeddingError) as err:
        text_request(MARENGO_3, purpose="X", dimension=512, text="a" * 501)
    assert err.value.reason == "text_too_long"
    assert not err.value.transient
    with pytest.raises(EmbeddingError):
        text_request(NOVA_MME, purpose="X", dimension=256, text="   ")


@pytest.mark.parametrize("model", [NOVA_MME, MARENGO_3])
def test_encode_request_equals_json_dumps(model: Any) -> None:
    dim = model.default_dimension
    inline = image_request(
        model,
        purpose="GENERIC_INDEX",
        dimension=dim,
        image_format="png",
        data=bytes(range(256)) * 9,
    )
    by_s3 = image_request(
        model, purpose="GENERIC_INDEX", dimension=dim, image_format="png", s3_uri='s3://b/"q".png'
    )
    text = text_request(model, purpose="GENERIC_RETRIEVAL", dimension=dim, text='say "hi" \\ é')
    for body in (inline, by_s3, text):
        assert encode_request(body) == json.dumps(body, separators=(",", ":")).encode()


@pytest.mark.parametrize("model_id", [NOVA_MME.model_id, MARENGO_3.model_id])
def test_embedder_sends_the_inline_image_as_json_bytes(model_id: str) -> None:
    """botocore gets bytes (no str copy of megabytes of base64), the same JSON as json.dumps."""
    ref = parse_model_id(model_id)
    dim = ref.spec.default_dimension
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t"
    )
    seen: list[Any] = []
    client.meta.events.register(
        "before-parameter-build.bedrock-runtime.InvokeModel",
        lambda params, **_: seen.append(params["body"]),
    )
    field = "embeddings" if ref.spec.family == "nova" else "data"
    payload = json.dumps({field: [{"embedding": [0.5] * dim}]}).encode()
    data = bytes(range(256)) * 40
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_model",
            {
                "body": StreamingBody(io.BytesIO(payload), len(payload)),
                "contentType": "application/json",
            },
        )
        Embedder(client, ref, dim).embed_image(
            purpose="GENERIC_INDEX", image_format="png", data=data
        )
    assert isinstance(seen[0], bytes)
    expected = image_request(
        ref.spec, purpose="GENERIC_INDEX", dimension=dim, image_format="png", data=data
    )
    assert json.loads(seen[0]) == expected
    assert base64.b64encode(data).decode() in seen[0].decode()


# --------------------------------------------------------------------------- responses


def test_parse_nova_and_marengo_responses() -> None:
    nova = {"embeddings": [{"embeddingType": "IMAGE", "embedding": [0.5, -0.25, 1.0]}]}
    assert parse_response(NOVA_MME, json.dumps(nova).encode(), 3) == [0.5, -0.25, 1.0]
    marengo = {"data": [{"embedding": [0.1, 0.2]}]}
    assert parse_response(MARENGO_3, json.dumps(marengo), 2) == [0.1, 0.2]
    assert parse_response(MARENGO_3, {"data": {"embedding": [0.3, 0.4]}}, 2) == [0.3, 0.4]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not an object"),
        (json.dumps({}).encode(), "no embeddings[0]"),
        (json.dumps({"embeddings": [{"embedding": [0.1] * 4}]}).encode(), "expected a 3-dimension"),
        (json.dumps({"embeddings": [{"embedding": "x"}]}).encode(), "no embedding list"),
        (b'{"embeddings": [{"embedding": [0.1, NaN, 0.2]}]}', "NaN or Infinity"),
        (b'{"embeddings": [{"embedding": [0.1, Infinity, 0.2]}]}', "NaN or Infinity"),
        (b'{"embeddings": [{"embedding": [Infinity, -Infinity, 0.2]}]}', "NaN or Infinity"),
        (json.dumps({"embeddings": [{"embedding": [0.1, "a", 0.2]}]}).encode(), "non-numbers"),
    ],
)
def test_bad_responses_are_transient_invalid_response(body: bytes, needle: str) -> None:
    with pytest.raises(EmbeddingError) as err:
        parse_response(NOVA_MME, body, 3)
    assert err.value.reason == "invalid_response"
    assert err.value.transient
    assert needle in err.value.detail


# --------------------------------------------------------------------------- backoff


def test_backoff_is_full_jitter_capped() -> None:
    assert backoff_delay(0, base=0.1, cap=10, rng=lambda: 1.0) == pytest.approx(0.1)
    assert backoff_delay(3, base=0.1, cap=10, rng=lambda: 1.0) == pytest.approx(0.8)
    assert backoff_delay(20, base=0.1, cap=10, rng=lambda: 1.0) == pytest.approx(10)
    assert backoff_delay(5, base=0.1, cap=10, rng=lambda: 0.0) == 0.0
    assert backoff_delay(5, base=0.1, cap=10, rng=lambda: 0.5) == pytest.approx(1.6)


# --------------------------------------------------------------------------- the edge


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _client() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _ok(vector: list[float]) -> dict[str, Any]:
    payload = json.dumps({"embeddings": [{"embeddingType": "IMAGE", "embedding": vector}]}).encode()
    return {
        "body": StreamingBody(io.BytesIO(payload), len(payload)),
        "contentType": "application/json",
    }


def _embedder(client: Any, fake: FakeTime, **kw: Any) -> Embedder:
    return Embedder(
        client,
        parse_model_id(NOVA_MME.model_id),
        256,
        sleep=fake.sleep,
        clock=fake.clock,
        rng=lambda: 1.0,
        **kw,
    )


def test_embedder_retries_throttling_then_succeeds() -> None:
    client, fake, retries = _client(), FakeTime(), []
    vector = [0.01 * i for i in range(256)]
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", "ThrottlingException", http_status_code=429)
        stub.add_client_error("invoke_model", "ServiceUnavailableException", http_status_code=503)
        stub.add_response("invoke_model", _ok(vector))
        got = _embedder(client, fake).embed_image(
            purpose="GENERIC_INDEX",
            image_format="jpeg",
            data=b"\xff\xd8\xff",
            on_retry=lambda reason, attempt, delay: retries.append((reason, attempt)),
        )
        stub.assert_no_pending_responses()
    assert got == pytest.approx(vector)
    assert retries == [("throttled", 1), ("service_unavailable", 2)]
    assert fake.sleeps == pytest.approx([0.1, 0.2])


def test_embedder_sends_the_model_id_and_json_body() -> None:
    client, fake = _client(), FakeTime()
    seen: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-parameter-build.bedrock-runtime.InvokeModel",
        lambda params, **_: seen.append(dict(params)),
    )
    with Stubber(client) as stub:
        stub.add_response("invoke_model", _ok([0.5] * 256))
        _embedder(client, fake).embed_text("wind turbine", purpose="GENERIC_RETRIEVAL")
    assert seen[0]["modelId"] == "amazon.nova-2-multimodal-embeddings-v1:0"
    body = json.loads(seen[0]["body"])
    assert body["singleEmbeddingParams"]["text"]["value"] == "wind turbine"


@pytest.mark.parametrize(
    "model_id",
    ["eu.twelvelabs.marengo-embed-3-0-v1:0", "us.amazon.nova-2-multimodal-embeddings-v1:0"],
)
def test_embedder_invokes_the_configured_inference_profile(model_id: str) -> None:
    """A Region that offers a model only through a profile refuses its base id."""
    ref = parse_model_id(model_id)
    client, fake = _client(), FakeTime()
    seen: list[str] = []
    client.meta.events.register(
        "before-parameter-build.bedrock-runtime.InvokeModel",
        lambda params, **_: seen.append(params["modelId"]),
    )
    dimension = ref.spec.default_dimension
    field = "embeddings" if ref.spec.family == "nova" else "data"
    payload = json.dumps({field: [{"embedding": [0.5] * dimension}]}).encode()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_model",
            {"body": StreamingBody(io.BytesIO(payload), len(payload)), "contentType": "json"},
        )
        embedder = Embedder(client, ref, dimension, sleep=fake.sleep, clock=fake.clock)
        embedder.embed_text("red", purpose="GENERIC_RETRIEVAL")
    assert seen == [model_id]
    assert embedder.model is ref.spec  # requests and limits follow the base model


def test_embedder_stops_retrying_at_the_deadline() -> None:
    client, fake = _client(), FakeTime()
    with Stubber(client) as stub:
        for _ in range(10):
            stub.add_client_error("invoke_model", "ThrottlingException", http_status_code=429)
        with pytest.raises(EmbeddingError) as err:
            _embedder(client, fake).embed_text(
                "x", purpose="GENERIC_RETRIEVAL", deadline=fake.now + 0.65
            )
    assert err.value.transient
    assert err.value.reason == "throttled"
    assert "time budget" in err.value.detail
    # Delays 0.1, 0.2 fit (0.3 s); the next 0.4 would end past 0.65 s: three calls made.
    assert fake.sleeps == pytest.approx([0.1, 0.2])
    assert fake.now <= 1000.65


def test_embedder_gives_up_after_max_attempts() -> None:
    client, fake = _client(), FakeTime()
    with Stubber(client) as stub:
        for _ in range(3):
            stub.add_client_error("invoke_model", "InternalServerException", http_status_code=500)
        with pytest.raises(EmbeddingError) as err:
            _embedder(client, fake, max_attempts=3).embed_text("x", purpose="GENERIC_RETRIEVAL")
        stub.assert_no_pending_responses()
    assert err.value.transient
    assert "after 3 attempts" in err.value.detail


def test_validation_exception_is_permanent_and_not_retried() -> None:
    client, fake = _client(), FakeTime()
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_model", "ValidationException", "Unable to process image", http_status_code=400
        )
        with pytest.raises(EmbeddingError) as err:
            _embedder(client, fake).embed_image(
                purpose="GENERIC_INDEX", image_format="png", data=b"\x89PNG"
            )
    assert err.value.reason == "model_rejected_input"
    assert not err.value.transient
    assert "Unable to process image" in err.value.detail
    assert fake.sleeps == []


@pytest.mark.parametrize(
    ("code", "status", "reason"),
    [
        ("AccessDeniedException", 403, "access_denied"),
        ("ResourceNotFoundException", 404, "model_not_found"),
        ("SomethingNew", 409, "bedrock_error"),
    ],
)
def test_configuration_errors_are_transient_but_not_retried(
    code: str, status: int, reason: str
) -> None:
    client, fake = _client(), FakeTime()
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", code, http_status_code=status)
        with pytest.raises(EmbeddingError) as err:
            _embedder(client, fake).embed_text("x", purpose="GENERIC_RETRIEVAL")
    assert err.value.reason == reason
    assert err.value.transient  # the message stays, to be redriven once fixed
    assert fake.sleeps == []


def test_unknown_5xx_is_retried() -> None:
    client, fake = _client(), FakeTime()
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", "Weird", http_status_code=502)
        stub.add_response("invoke_model", _ok([1.0] * 256))
        assert len(_embedder(client, fake).embed_text("x", purpose="GENERIC_RETRIEVAL")) == 256
    assert len(fake.sleeps) == 1


def test_wrong_dimension_response_is_reported() -> None:
    client, fake = _client(), FakeTime()
    with Stubber(client) as stub:
        stub.add_response("invoke_model", _ok([1.0] * 1024))
        with pytest.raises(EmbeddingError) as err:
            _embedder(client, fake).embed_text("x", purpose="GENERIC_RETRIEVAL")
    assert err.value.reason == "invalid_response"
    assert "expected a 256-dimension embedding, got 1024" in err.value.detail


def test_embedder_refuses_an_impossible_dimension_up_front() -> None:
    with pytest.raises(EmbeddingError):
        Embedder(_client(), parse_model_id(MARENGO_3.model_id), 1024)


@pytest.mark.parametrize(
    ("message", "reason", "transient"),
    [
        *(
            (message, "model_rejected_input", False)
            for message in (
                "Unable to process the image",
                "The provided image does not match the specified image format.",
                "Image dimensions exceed the maximum allowed (8000 x 8000 pixels)",
                "The input image could not be decoded",
                "Input image size exceeds the limit",
            )
        ),
        *(
            (message, "model_configuration_error", True)
            for message in (
                "Invocation of model ID amazon.nova-2-multimodal-embeddings-v1:0 with on-demand "
                "throughput isn't supported. Retry your request with the ID or ARN of an "
                "inference profile that contains this model.",
                "The provided model identifier is invalid.",
                "Your AWS account is not authorized to invoke this API operation.",
                "Malformed input request: #/singleEmbeddingParams/image/format: jpg is not a "
                "valid enum value, please reformat your input and try again.",
                "Unable to access the image at the S3 location s3://b/k.jpg",
                "The model is not supported in this region.",
                "",
            )
        ),
    ],
)
def test_a_validation_error_is_the_images_fault_only_when_it_is_about_the_image(
    message: str, reason: str, transient: bool
) -> None:
    client, fake = _client(), FakeTime()
    with Stubber(client) as stub:
        stub.add_client_error("invoke_model", "ValidationException", message, 400)
        with pytest.raises(EmbeddingError) as err:
            _embedder(client, fake).embed_image(
                purpose="GENERIC_INDEX", image_format="png", data=b"\x89PNG"
            )
    assert (err.value.reason, err.value.transient) == (reason, transient)
    assert fake.sleeps == []  # neither is retried inside the invocation
