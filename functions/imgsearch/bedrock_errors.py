"""What a failed Bedrock call means for the message: retry now, redeliver, or the image's fault.

Access and configuration errors are never the image's fault: fixing IAM, model access
or the model id and redriving the DLQ must recover every image. Bedrock answers
``ValidationException`` for such problems too (a model id that needs an inference
profile, an invalid model identifier, an account not allowed to invoke, a request
shape the model does not take, an S3 location it cannot read). Only a message about
the input itself (:func:`is_input_rejection`) makes it :data:`REJECTED_INPUT`; any
other is :data:`MODEL_CONFIGURATION_ERROR`, transient, so a misconfigured deployment
fills the DLQ (and trips the permanent-failure alarm) instead of acknowledging every
image. Pure: botocore's exception types only.
"""

from __future__ import annotations

import re

from botocore.exceptions import ClientError

from imgsearch.aws_errors import THROTTLING_CODES, error_code, error_message, http_status

# Stable machine reasons (logged and used as a metric dimension: never rename).
THROTTLED = "throttled"
SERVICE_UNAVAILABLE = "service_unavailable"
MODEL_NOT_READY = "model_not_ready"
MODEL_TIMEOUT = "model_timeout"
MODEL_ERROR = "model_error"
CONNECTION_ERROR = "connection_error"
ACCESS_DENIED = "access_denied"
MODEL_NOT_FOUND = "model_not_found"
REJECTED_INPUT = "model_rejected_input"
MODEL_CONFIGURATION_ERROR = "model_configuration_error"
UNKNOWN_ERROR = "bedrock_error"

# Bedrock error codes worth retrying inside the invocation, with their reason. The
# throttle codes are the shared set, so "is this a throttle?" has one answer everywhere.
_RETRY_CODES: dict[str, str] = {
    **dict.fromkeys(THROTTLING_CODES, THROTTLED),
    "ServiceUnavailableException": SERVICE_UNAVAILABLE,
    "InternalServerException": SERVICE_UNAVAILABLE,
    "ModelNotReadyException": MODEL_NOT_READY,
    "ModelTimeoutException": MODEL_TIMEOUT,
    "ModelErrorException": MODEL_ERROR,
}
# Not retried now, but not the image's fault either: the message goes back to SQS.
_REDELIVER_CODES: dict[str, str] = {
    "AccessDeniedException": ACCESS_DENIED,
    "UnrecognizedClientException": ACCESS_DENIED,
    "ExpiredTokenException": ACCESS_DENIED,
    "ResourceNotFoundException": MODEL_NOT_FOUND,
}
# Wording of ValidationException messages. Configuration wins over input: "Unable to
# access the image at the S3 location" names the image but is about access.
_CONFIGURATION_WORDS = re.compile(
    r"model id|model identifier|inference profile|throughput|provisioned|authoriz|access"
    r"|permission|region|subscri|agreement|end of life|legacy|malformed|extraneous key"
    r"|required key|embedding ?dimension|s3|bucket|kms|guardrail",
    re.IGNORECASE,
)
_INPUT_WORDS = re.compile(
    r"image|picture|pixel|decod|corrupt|dimensions|resolution|aspect ratio|file size"
    r"|media type|unsupported format|input (is )?too (large|long)|size exceeds",
    re.IGNORECASE,
)


def is_input_rejection(message: str) -> bool:
    """True if a ``ValidationException`` message is about the input (the image itself)."""
    return not _CONFIGURATION_WORDS.search(message) and bool(_INPUT_WORDS.search(message))


def classify(exc: ClientError) -> tuple[str, bool]:
    """(reason, retry now?) for a Bedrock error; only :data:`REJECTED_INPUT` is permanent."""
    code = error_code(exc)
    if code in _RETRY_CODES:
        return _RETRY_CODES[code], True
    if code in _REDELIVER_CODES:
        return _REDELIVER_CODES[code], False
    if code == "ValidationException":
        if is_input_rejection(error_message(exc)):
            return REJECTED_INPUT, False
        return MODEL_CONFIGURATION_ERROR, False
    status = http_status(exc)
    if status >= 500:
        return SERVICE_UNAVAILABLE, True
    if status == 429:
        return THROTTLED, True
    # An unknown 4xx: keep the message (transient) rather than drop an image on a guess.
    return UNKNOWN_ERROR, False


__all__ = [
    "ACCESS_DENIED",
    "CONNECTION_ERROR",
    "MODEL_CONFIGURATION_ERROR",
    "MODEL_NOT_FOUND",
    "REJECTED_INPUT",
    "classify",
    "is_input_rejection",
]
