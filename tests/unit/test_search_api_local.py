"""The local HTTP API's stand-in checks: SigV4 computed again, and the token bucket."""

from __future__ import annotations

import datetime as dt

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from localcloud.services.http_api import TokenBucket, verify_sigv4

CREDS = Credentials("testing", "testing")
URL = "http://127.0.0.1:4567/search?x=1"
BODY = b'{"text": "red"}'


def signed(
    credentials: Credentials = CREDS, service: str = "execute-api", body: bytes = BODY
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=URL, data=body, headers={"content-type": "x/y"})
    SigV4Auth(credentials, service, "us-east-1").add_auth(request)
    # what the HTTP request carries: the signed headers, and Host (signed from the URL)
    return {"host": "127.0.0.1:4567", **{k.lower(): v for k, v in request.headers.items()}}


def test_a_request_signed_with_the_local_credential_verifies() -> None:
    assert verify_sigv4("POST", URL, signed(), BODY, CREDS) is None


def test_unsigned_wrong_key_wrong_secret_wrong_service_and_tampering_are_refused() -> None:
    assert verify_sigv4("POST", URL, {}, BODY, CREDS) == "no SigV4 Authorization header"
    other = signed(Credentials("someone", "testing"))
    assert verify_sigv4("POST", URL, other, BODY, CREDS) == "unknown access key 'someone'"
    wrong = signed(Credentials("testing", "guessed"))
    assert verify_sigv4("POST", URL, wrong, BODY, CREDS) == "the signature does not match"
    s3 = signed(service="s3")
    assert verify_sigv4("POST", URL, s3, BODY, CREDS) == "signed for 's3', not 'execute-api'"
    headers = signed()
    assert verify_sigv4("POST", URL, headers, b'{"text": "blue"}', CREDS) is not None
    assert verify_sigv4("GET", URL, headers, BODY, CREDS) is not None
    assert verify_sigv4("POST", URL.replace("x=1", "x=2"), headers, BODY, CREDS) is not None


def test_an_old_signature_is_refused() -> None:
    headers = signed()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
    headers["x-amz-date"] = old.strftime("%Y%m%dT%H%M%SZ")
    assert verify_sigv4("POST", URL, headers, BODY, CREDS) == (
        "the signature is more than 15 minutes old"
    )


def test_the_bucket_allows_a_burst_then_refuses_until_refilled() -> None:
    bucket = TokenBucket(rate=0.0, burst=3)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    bucket.configure(rate=0.0, burst=1)
    assert [bucket.take() for _ in range(2)] == [True, False]
