"""What the embedder makes of a failed Bedrock call: one throttle rule shared with aws_errors."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from imgsearch.aws_errors import THROTTLING_CODES
from imgsearch.bedrock_errors import SERVICE_UNAVAILABLE, THROTTLED, classify


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "InvokeModel",
    )


@pytest.mark.parametrize("code", sorted(THROTTLING_CODES))
def test_every_shared_throttle_code_is_a_throttle_retried_now(code: str) -> None:
    assert classify(_error(code)) == (THROTTLED, True)


@pytest.mark.parametrize("code", ["ServiceUnavailableException", "InternalServerException"])
def test_service_faults_are_retried_now(code: str) -> None:
    assert classify(_error(code, 500)) == (SERVICE_UNAVAILABLE, True)
