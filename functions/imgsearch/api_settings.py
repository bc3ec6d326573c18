"""The search API's settings: a base of :class:`imgsearch.config.PipelineConfig`.

They are ``cdk.json``/``-c`` keys like every other setting (``-c search_api=false``),
kept here so the config module does not grow with the API. Each text or image query
costs a Bedrock call, so throttling is on by default and low; raise it for a busy
application. Pure: standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from imgsearch.limits import LIMITS

SearchAuth = Literal["iam", "cognito"]

_USER_POOL_ARN = re.compile(r"arn:aws[-a-z]*:cognito-idp:[-a-z0-9]+:[0-9]{12}:userpool/[-\w]+")
_ORIGIN = re.compile(r"\*|https?://[^/\s*]+(:[0-9]+)?")
THROTTLE_RATE_MAX = 10_000
"""An HTTP API stage's rate may not exceed the account's (10,000 requests/s by default)."""


@dataclass(frozen=True)
class SearchApiSettings:
    """Settings of the search endpoint (``search_*`` keys)."""

    search_api: bool = True
    """False leaves the endpoint (API, search Lambda, its alarms) out of the stack."""
    search_auth: SearchAuth = "iam"
    """``iam``: every route needs a SigV4-signed request (``execute-api:Invoke``).
    ``cognito``: a JWT from a Cognito user pool (created, or ``search_user_pool_arn``)."""
    search_user_pool_arn: str = ""
    search_user_pool_client_ids: tuple[str, ...] = ()
    """The JWT audiences for an imported pool; a created pool gets its own client."""
    search_cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API (none: no CORS answer at all)."""
    search_throttle_rate: int = 5
    """Steady requests per second for the whole API (API Gateway stage throttling)."""
    search_throttle_burst: int = 10
    search_presign_seconds: int = 300
    """Lifetime of the presigned original/thumbnail URLs in search answers."""
    search_memory_mb: int = 512
    search_timeout_seconds: int = 15

    def search_api_problem(self) -> str | None:
        """What is wrong with the ``search_*`` settings (one line naming the key), or None."""
        if self.search_user_pool_arn and not _USER_POOL_ARN.fullmatch(self.search_user_pool_arn):
            return (
                f"config key 'search_user_pool_arn': {self.search_user_pool_arn!r} is not a "
                "Cognito user pool ARN; use arn:aws:cognito-idp:<region>:<account>:userpool/<id>"
            )
        if self.search_user_pool_arn and not self.search_user_pool_client_ids:
            return (
                "config key 'search_user_pool_client_ids': an imported user pool needs the app "
                "client ids whose tokens the API accepts (the JWT audience)"
            )
        if (self.search_user_pool_arn or self.search_user_pool_client_ids) and (
            self.search_auth != "cognito"
        ):
            return "config key 'search_auth': a user pool is set; use search_auth=cognito"
        for origin in self.search_cors_origins:
            if not _ORIGIN.fullmatch(origin):
                return (
                    f"config key 'search_cors_origins': {origin!r} is not an origin; use "
                    "scheme://host[:port] (no path), e.g. https://shop.example.com, or *"
                )
        if not 1 <= self.search_throttle_rate <= THROTTLE_RATE_MAX:
            return f"config key 'search_throttle_rate': must be 1..{THROTTLE_RATE_MAX} per second"
        if not 1 <= self.search_throttle_burst <= 5000:
            return "config key 'search_throttle_burst': must be 1..5000 requests"
        if not 1 <= self.search_presign_seconds <= 3600:
            return (
                "config key 'search_presign_seconds': must be 1..3600 (presigned URLs are "
                "short-lived; the role's session credentials end them anyway)"
            )
        if not 128 <= self.search_memory_mb <= 10_240:
            return "config key 'search_memory_mb': must be 128..10240"
        if not 1 <= self.search_timeout_seconds < LIMITS.http_api_timeout_seconds:
            return (
                "config key 'search_timeout_seconds': must be 1.."
                f"{LIMITS.http_api_timeout_seconds - 1} (API Gateway waits at most "
                f"{LIMITS.http_api_timeout_seconds} s for the function)"
            )
        return None


__all__ = ["THROTTLE_RATE_MAX", "SearchApiSettings", "SearchAuth"]
