"""The embedder's own account of an object: its last outcome line in CloudWatch Logs.

The embedder logs one JSON line per message (``imgsearch.contract.OUTCOME_FIELDS``).
``dlq list`` shows the last failure line of each dead-lettered object; ``verify`` asks
whether a missing vector's object version failed for good. The lookup is bounded
(:data:`LOG_PAGES_MAX` pages per object) and degrades to "unknown" with one note when
the logs cannot be read, never to an error: the logs explain, they are not the data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from imgsearch.aws_errors import error_code
from imgsearch.contract import FAILURE_OUTCOMES, OUTCOME_FIELDS
from scripts.common.errors import CREDENTIAL_ERRORS, describe_aws_error

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient

PERMANENT_FAILURE = "permanent_failure"
LOG_LOOKBACK_MS = 60_000
LOG_PAGES_MAX = 20
"""FilterLogEvents pages read per message: a bounded look, not a scan of weeks of logs."""


@dataclass
class LastError:
    time: str
    outcome: str
    reason: str | None
    detail: str | None
    etag: str | None = None
    """The object version the line is about."""


class LogLookup:
    """The embedder's last failure line for an object, from CloudWatch Logs."""

    def __init__(
        self, logs: CloudWatchLogsClient, log_group: str | None, note: Callable[[str], None]
    ) -> None:
        self.logs = logs
        self.log_group = log_group
        self._note = note
        self._disabled = log_group is None
        self._capped = False

    def last_failure(self, vkey: str, since_ms: int | None) -> LastError | None:
        """The object's last failure line (later successes are not considered)."""
        return self._last(vkey, since_ms, FAILURE_OUTCOMES)

    def last_outcome(self, vkey: str, since_ms: int | None) -> LastError | None:
        """The object's last outcome line of any kind (``verify`` asks: did it fail for good?)."""
        return self._last(vkey, since_ms, None)

    def _last(
        self, vkey: str, since_ms: int | None, outcomes: frozenset[str] | None
    ) -> LastError | None:
        if self._disabled or self.log_group is None:
            return None
        fields = OUTCOME_FIELDS
        kwargs: dict[str, Any] = {
            "logGroupName": self.log_group,
            "filterPattern": f'"{vkey}"',
        }
        if since_ms:
            kwargs["startTime"] = max(0, since_ms - LOG_LOOKBACK_MS)
        found: LastError | None = None
        try:
            for _ in range(LOG_PAGES_MAX):
                response = self.logs.filter_log_events(**kwargs)
                for event in response.get("events") or []:
                    record = _json_object(event.get("message"))
                    if record is None or record.get(fields.vector_key) != vkey:
                        continue
                    outcome = record.get(fields.outcome)
                    if isinstance(outcome, str) and (outcomes is None or outcome in outcomes):
                        found = LastError(
                            time=millis_to_iso(event.get("timestamp")) or "",
                            outcome=outcome,
                            reason=_str_or_none(record.get(fields.reason)),
                            detail=_str_or_none(record.get(fields.detail)),
                            etag=_str_or_none(record.get(fields.etag)),
                        )
                token = response.get("nextToken")
                if not token:
                    return found
                kwargs["nextToken"] = token
            if not self._capped:
                self._capped = True
                self._note(
                    f"stopped reading {self.log_group} after {LOG_PAGES_MAX} pages for a message; "
                    "its last error may be older or newer than what is shown"
                )
            return found
        except CREDENTIAL_ERRORS:
            raise
        except ClientError as exc:
            self._disabled = True
            if error_code(exc) == "ResourceNotFoundException":
                self._note(
                    f"log group {self.log_group} not found: the last error of each message is "
                    "unknown"
                )
            else:
                self._note(f"cannot read the embedder's logs ({describe_aws_error(exc)})")
            return found


def recent_failures(
    logs: CloudWatchLogsClient,
    log_group: str,
    *,
    limit: int,
    lookback_days: int,
    note: Callable[[str], None],
) -> tuple[list[dict[str, Any]], bool]:
    """The last permanent-failure line per object of the last ``lookback_days``, newest
    first, and whether there were more (``limit`` reached or :data:`LOG_PAGES_MAX` pages
    read). Each: ``{uri, reason, detail, at, where: "failure log", vector_key}``."""
    fields = OUTCOME_FIELDS
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "filterPattern": f'"{PERMANENT_FAILURE}"',
        "startTime": int((time.time() - lookback_days * 86_400) * 1000),
    }
    by_key: dict[str, dict[str, Any]] = {}
    truncated = True
    try:
        for _ in range(LOG_PAGES_MAX):
            response = logs.filter_log_events(**kwargs)
            for event in response.get("events") or []:
                record = _json_object(event.get("message"))
                if record is None or record.get(fields.outcome) != PERMANENT_FAILURE:
                    continue
                vkey, bucket, key = (
                    record.get(f) for f in (fields.vector_key, fields.bucket, fields.key)
                )
                if not isinstance(vkey, str):
                    continue
                by_key.pop(vkey, None)  # re-insert: the dict ends in time order
                by_key[vkey] = {
                    "uri": f"s3://{bucket}/{key}" if bucket and key else None,
                    "reason": _str_or_none(record.get(fields.reason)),
                    "detail": _str_or_none(record.get(fields.detail)),
                    "at": millis_to_iso(event.get("timestamp")),
                    "where": "failure log",
                    "vector_key": vkey,
                }
            token = response.get("nextToken")
            if not token:
                truncated = False
                break
            kwargs["nextToken"] = token
    except CREDENTIAL_ERRORS:
        raise
    except ClientError as exc:  # the logs explain; they are not the data
        note(f"cannot read the embedder's logs {log_group} ({describe_aws_error(exc)})")
        return [], False
    newest = list(reversed(by_key.values()))
    return newest[:limit], truncated or len(newest) > limit


def embedder_log_group(lambda_client: LambdaClient, function_name: str | None) -> str | None:
    """The embedder's log group: its logging config, else Lambda's default name."""
    if not function_name:
        return None
    try:
        config = lambda_client.get_function_configuration(FunctionName=function_name)
    except CREDENTIAL_ERRORS:
        raise
    except ClientError:
        return f"/aws/lambda/{function_name}"
    group = (config.get("LoggingConfig") or {}).get("LogGroup")
    return str(group) if group else f"/aws/lambda/{function_name}"


def millis_to_iso(value: Any) -> str | None:
    """Epoch milliseconds (as SQS and CloudWatch Logs give them) -> ``...Z`` or None."""
    try:
        stamp = datetime.fromtimestamp(int(value) / 1000.0, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_to_millis(iso: str | None) -> int | None:
    """An ISO 8601 time (naive means UTC) -> epoch milliseconds, None if it is not one."""
    if not iso:
        return None
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _json_object(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return None
    start = text.find("{")
    if start < 0:
        return None
    try:
        value = json.loads(text[start:])
    except (ValueError, RecursionError):  # any line may be in the group: deep nesting too
        return None
    return value if isinstance(value, dict) else None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


__all__ = [
    "LOG_PAGES_MAX",
    "LastError",
    "LogLookup",
    "embedder_log_group",
    "iso_to_millis",
    "millis_to_iso",
    "recent_failures",
]
