"""What a deploy of this config would fail on in this account, and the setting that fixes it.

Each check makes one or two cheap read-only calls and returns :class:`Finding` values;
nothing here prints or raises on a failed check. A check whose call is refused (no
permission to ask) is ``unknown``, not ``fail``: the deploy may still work. Credential
and connection errors propagate, since no check could run without them.

- Lambda concurrency: reserving ``reserved_concurrency`` must leave at least
  ``LIMITS.lambda_min_unreserved_concurrency`` unreserved (``GetAccountSettings``), else
  CloudFormation fails with "decreases account's UnreservedConcurrentExecution below its
  minimum value of [10]". A deployed embedder's own reservation is counted as free.
- The model in this Region: a foundation model id must be offered on demand here
  (``GetFoundationModel``); where the Region offers it only through a cross-Region
  inference profile the fix names that profile (``ListInferenceProfiles``). A profile
  id must exist here (``GetInferenceProfile``); its destination Regions are reported.
- Model access: the account's entitlement and (for a third-party model) its Marketplace
  agreement (``GetFoundationModelAvailability``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from botocore.exceptions import ClientError

from imgsearch.aws_errors import client_error_text, error_code
from imgsearch.config import PipelineConfig
from imgsearch.limits import LIMITS
from imgsearch.models import INFERENCE_PROFILE_PREFIXES

if TYPE_CHECKING:
    from mypy_boto3_bedrock import BedrockClient
    from mypy_boto3_lambda import LambdaClient

Status = Literal["ok", "fail", "unknown"]

NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "ValidationException"})
"""What Bedrock's control plane answers for an id it does not have in this Region."""
MODEL_IN_REGION = "model in region"


@dataclass(frozen=True)
class Finding:
    """One check's result: ``fix`` is what to change (``-c key=value`` where one helps)."""

    check: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        """The one line the operator reads."""
        if self.status == "ok":
            return f"{self.check}: ok: {self.detail}"
        if self.status == "unknown":
            return f"{self.check}: cannot check: {self.detail}"
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{self.check}: will fail: {self.detail}{fix}"


# --------------------------------------------------------------------------- Lambda


def check_lambda_concurrency(
    lambda_client: LambdaClient, cfg: PipelineConfig, embedder_function: str | None = None
) -> Finding:
    """Whether the account can reserve the embedder's concurrency.

    ``embedder_function`` is the deployed embedder's name, if any: an update gives its
    current reservation back before taking the new one.
    """
    check = "lambda concurrency"
    wanted = cfg.embedder_reserved_concurrency
    if wanted == 0:
        return Finding(
            check,
            "ok",
            "no reserved concurrency (reserved_concurrency=0); the event source runs at most "
            f"{cfg.embedder_concurrency} embedders",
        )
    try:
        limits = lambda_client.get_account_settings()["AccountLimit"]
        held = _reserved_now(lambda_client, embedder_function)
    except ClientError as exc:
        return Finding(check, "unknown", client_error_text(exc))
    quota = limits.get("ConcurrentExecutions", 0)
    unreserved = limits.get("UnreservedConcurrentExecutions", 0) + held
    minimum = LIMITS.lambda_min_unreserved_concurrency
    left = unreserved - wanted
    facts = f"account quota {quota}, {unreserved} unreserved" + (
        f" counting the {held} the deployed embedder holds" if held else ""
    )
    if left >= minimum:
        return Finding(check, "ok", f"reserving {wanted} leaves {left} unreserved ({facts})")
    return Finding(
        check,
        "fail",
        f"reserving {wanted} would leave {left} unreserved, below Lambda's minimum of "
        f"{minimum} ({facts})",
        _concurrency_fix(cfg, unreserved - minimum),
    )


def _reserved_now(lambda_client: LambdaClient, function_name: str | None) -> int:
    if not function_name:
        return 0
    try:
        response = lambda_client.get_function_concurrency(FunctionName=function_name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return 0
        raise
    return int(response.get("ReservedConcurrentExecutions", 0))


def _concurrency_fix(cfg: PipelineConfig, room: int) -> str:
    fix = "-c reserved_concurrency=0 (the event source's maximum concurrency still limits it)"
    if room >= LIMITS.lambda_min_event_source_max_concurrency:
        smaller = f"-c embedder_concurrency={room}"
        if cfg.reserved_concurrency > 0:
            smaller += f" -c reserved_concurrency={room}"
        fix += f", or {smaller}"
    return fix + ", or raise the account's Lambda concurrency quota (Service Quotas)"


# --------------------------------------------------------------------------- Bedrock


def check_model(bedrock: BedrockClient, cfg: PipelineConfig, region: str) -> list[Finding]:
    """Whether ``cfg.model_id`` can be invoked from ``region``, and with model access."""
    return [_check_offered(bedrock, cfg, region), _check_access(bedrock, cfg, region)]


def _check_offered(bedrock: BedrockClient, cfg: PipelineConfig, region: str) -> Finding:
    try:
        if cfg.model_ref.is_profile:
            return _check_profile(bedrock, cfg, region)
        return _check_foundation_model(bedrock, cfg, region)
    except ClientError as exc:
        return Finding(MODEL_IN_REGION, "unknown", client_error_text(exc))


def _check_foundation_model(bedrock: BedrockClient, cfg: PipelineConfig, region: str) -> Finding:
    base_id = cfg.model_ref.base_id
    try:
        details = bedrock.get_foundation_model(modelIdentifier=base_id)["modelDetails"]
    except ClientError as exc:
        if error_code(exc) not in NOT_FOUND_CODES:
            raise
        return _not_here(bedrock, base_id, region, f"{region} does not offer {base_id}")
    kinds = details.get("inferenceTypesSupported") or []
    if "ON_DEMAND" in kinds:
        return Finding(MODEL_IN_REGION, "ok", f"{region} offers {base_id} on demand")
    offered = ", ".join(kinds) or "nothing"
    return _not_here(
        bedrock, base_id, region, f"{region} offers {base_id} only as {offered}, not on demand"
    )


def _check_profile(bedrock: BedrockClient, cfg: PipelineConfig, region: str) -> Finding:
    ref = cfg.model_ref
    try:
        profile = bedrock.get_inference_profile(inferenceProfileIdentifier=ref.model_id)
    except ClientError as exc:
        if error_code(exc) not in NOT_FOUND_CODES:
            raise
        return _not_here(
            bedrock, ref.base_id, region, f"{region} has no inference profile {ref.model_id}"
        )
    destinations = sorted(
        {arn.split(":")[3] for m in profile.get("models", []) if (arn := m.get("modelArn", ""))}
        - {""}
    )
    status = profile.get("status", "")
    if status != "ACTIVE":
        return Finding(
            MODEL_IN_REGION, "fail", f"inference profile {ref.model_id} is {status or 'inactive'}"
        )
    return Finding(
        MODEL_IN_REGION,
        "ok",
        f"inference profile {ref.model_id} routes to " + (", ".join(destinations) or "?"),
    )


def _not_here(bedrock: BedrockClient, base_id: str, region: str, why: str) -> Finding:
    """A failed model check, with the profile (or plain id) that works here if any."""
    profiles = list(_profiles_for(bedrock, base_id))
    if profiles:
        return Finding(
            MODEL_IN_REGION,
            "fail",
            why,
            f"-c model_id={profiles[0]} (an inference profile {region} offers"
            + (f"; also {', '.join(profiles[1:])}" if profiles[1:] else "")
            + ")",
        )
    return Finding(
        MODEL_IN_REGION,
        "fail",
        why + " and no inference profile for it",
        f"deploy to a Region that offers {base_id} (-c region=... / --region)",
    )


def _profiles_for(bedrock: BedrockClient, base_id: str) -> Iterator[str]:
    """This Region's system-defined profiles for ``base_id``, geographic before global."""
    found: set[str] = set()
    token = ""
    while True:
        page = (
            bedrock.list_inference_profiles(typeEquals="SYSTEM_DEFINED", nextToken=token)
            if token
            else bedrock.list_inference_profiles(typeEquals="SYSTEM_DEFINED")
        )
        found |= {p["inferenceProfileId"] for p in page.get("inferenceProfileSummaries", [])}
        token = page.get("nextToken", "")
        if not token:
            break
    for prefix in INFERENCE_PROFILE_PREFIXES:
        if f"{prefix}.{base_id}" in found:
            yield f"{prefix}.{base_id}"


def _check_access(bedrock: BedrockClient, cfg: PipelineConfig, region: str) -> Finding:
    ref = cfg.model_ref
    check = "model access"
    try:
        availability = bedrock.get_foundation_model_availability(modelId=ref.base_id)
    except ClientError as exc:
        return Finding(check, "unknown", client_error_text(exc))
    console = f"enable access to {ref.base_id} in the Bedrock console (Model access) in {region}"
    if availability.get("entitlementAvailability") == "NOT_AVAILABLE":
        return Finding(check, "fail", f"the account is not entitled to {ref.base_id}", console)
    agreement = availability.get("agreementAvailability", {})
    if agreement.get("status", "AVAILABLE") != "AVAILABLE":
        detail = f"the Marketplace agreement for {ref.base_id} is {agreement.get('status')}"
        if agreement.get("errorMessage"):
            detail += f" ({agreement['errorMessage']})"
        return Finding(check, "fail", detail, console)
    # Through a profile the source Region need not host the model itself.
    if availability.get("regionAvailability") == "NOT_AVAILABLE" and not ref.is_profile:
        return Finding(check, "fail", f"{ref.base_id} is not available in {region}", console)
    return Finding(check, "ok", f"the account may use {ref.base_id}")


__all__ = ["Finding", "Status", "check_lambda_concurrency", "check_model"]
