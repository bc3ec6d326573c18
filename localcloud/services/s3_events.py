"""S3 event notifications as S3 sends them, delivered to the local Lambda runtime.

moto builds the notification events itself but differs from S3 in their shape, in
how it filters them and in what configuration it accepts, and invokes Lambda targets
through its own backend. :class:`S3EventHook` patches ``moto.s3.notifications`` and two
methods of ``moto.s3.models`` (the only way in, there is no public hook):

* the key is form-encoded with ``/`` left alone (moto encodes it as ``%2F``);
* a filter's prefix and suffix are matched against that encoded key, as S3 does, so a
  filter written with a raw space or ``ñ`` matches nothing (moto matches the raw key);
* ``PutBucketNotificationConfiguration`` refuses two filters that overlap for one event
  type, with S3's error (moto accepts them);
* each event carries a per-key ordering token (``sequencer``), and the version id on
  versioned buckets;
* removal events carry neither size nor ETag;
* a Lambda target's event goes to ``deliver(function_arn, event)`` instead of moto.

:meth:`S3EventHook.remove` puts moto back as it was.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from imgsearch.selection import event_encoded
from infra.notifications import KeyFilter, filters_overlap

Deliver = Callable[[str, dict[str, Any]], None]
"""``deliver(function_arn, event)`` for every event S3 sends to a Lambda function."""

_SEQUENCER = itertools.count(1)

AMBIGUOUS = (
    "Configuration is ambiguously defined. Cannot have overlapping suffixes in two rules "
    "if the prefixes are overlapping for the same event type."
)
"""S3's ``InvalidArgument`` message for overlapping filters (as S3 and CloudFormation
report it; the rule is in the S3 User Guide, "Configuring event notifications using
object key name filtering")."""


def key_filter(notification: Any) -> KeyFilter:
    """A moto notification's filter; a missing prefix or suffix is empty (matches all)."""
    rules = (notification.filters or {}).get("S3Key", {}).get("FilterRule", [])
    values = {str(r["Name"]).lower(): str(r["Value"]) for r in rules}
    return KeyFilter(values.get("prefix", ""), values.get("suffix", ""))


def events_overlap(a: str, b: str) -> bool:
    """True if one event type includes the other (``s3:ObjectCreated:*`` and ``:Put``)."""
    a, b = (e if e.startswith("s3:") else f"s3:{e}" for e in (a, b))
    return a == b or any(x.endswith(":*") and y.startswith(x[:-1]) for x, y in ((a, b), (b, a)))


def ambiguous(notifications: list[Any]) -> bool:
    """True if two of a bucket's notifications overlap for one event type.

    S3 checks every pair of the configuration, whatever their destinations.
    """
    for i, a in enumerate(notifications):
        for b in notifications[i + 1 :]:
            same_event = any(events_overlap(x, y) for x in a.events for y in b.events)
            if same_event and filters_overlap(key_filter(a), key_filter(b)):
                return True
    return False


class S3EventHook:
    """moto's S3 notifications, patched (see the module docstring)."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._patches: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        from moto.s3 import models, notifications
        from moto.s3.exceptions import S3ClientError

        original_event = notifications._get_s3_event
        original_set = models.FakeBucket.set_notification_configuration

        def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
            event = original_event(event_name, bucket, key, notification_id)
            obj = event["Records"][0]["s3"]["object"]
            obj["key"] = event_encoded(key.name)
            obj["sequencer"] = f"{next(_SEQUENCER):016X}"
            if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None):
                obj["versionId"] = str(key.version_id)
            if "ObjectRemoved" in event_name:
                obj.pop("size", None)
                obj.pop("eTag", None)
            return event

        def invoke_lambda(account_id: str, event: Any, fn_arn: str, region: str) -> None:
            self._deliver(fn_arn, event)

        def key_matches(notification: Any, key_name: str) -> bool:
            f, encoded = key_filter(notification), event_encoded(key_name)
            return encoded.startswith(f.prefix) and encoded.endswith(f.suffix)

        def set_configuration(bucket: Any, config: dict[str, Any] | None) -> None:
            if config:  # checked first: S3 keeps the old configuration and sends nothing
                parsed = models.NotificationConfiguration(
                    topic=config.get("TopicConfiguration"),
                    queue=config.get("QueueConfiguration"),
                    cloud_function=config.get("CloudFunctionConfiguration"),
                )
                if ambiguous([*parsed.topic, *parsed.queue, *parsed.cloud_function]):
                    raise S3ClientError("InvalidArgument", AMBIGUOUS)
            original_set(bucket, config)

        self._patch(notifications, "_get_s3_event", s3_event)
        self._patch(notifications, "_invoke_awslambda", invoke_lambda)
        self._patch(models.Notification, "_key_matches", key_matches)
        self._patch(models.FakeBucket, "set_notification_configuration", set_configuration)

    def _patch(self, module: Any, name: str, value: Any) -> None:
        self._patches.append((module, name, getattr(module, name)))
        setattr(module, name, value)

    def remove(self) -> None:
        for module, name, value in reversed(self._patches):
            setattr(module, name, value)
        self._patches.clear()


__all__ = ["AMBIGUOUS", "Deliver", "S3EventHook", "ambiguous", "events_overlap", "key_filter"]
