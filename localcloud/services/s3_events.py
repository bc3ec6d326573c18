"""S3 event notifications as S3 sends them, delivered to the local Lambda runtime.

moto builds the notification events itself but differs from S3 in their shape, and
invokes Lambda targets through its own backend. :class:`S3EventHook` patches both
places in ``moto.s3.notifications`` (the only way in, there is no public hook):

* the key is form-encoded with ``/`` left alone (moto encodes it as ``%2F``);
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
from urllib.parse import quote_plus

Deliver = Callable[[str, dict[str, Any]], None]
"""``deliver(function_arn, event)`` for every event S3 sends to a Lambda function."""

_SEQUENCER = itertools.count(1)


class S3EventHook:
    """moto's S3 notifications, patched (see the module docstring)."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._patches: list[tuple[Any, str, Any]] = []

    def install(self) -> None:
        from moto.s3 import notifications

        original_event = notifications._get_s3_event

        def s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
            event = original_event(event_name, bucket, key, notification_id)
            obj = event["Records"][0]["s3"]["object"]
            obj["key"] = quote_plus(key.name, safe="/")
            obj["sequencer"] = f"{next(_SEQUENCER):016X}"
            if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None):
                obj["versionId"] = str(key.version_id)
            if "ObjectRemoved" in event_name:
                obj.pop("size", None)
                obj.pop("eTag", None)
            return event

        def invoke_lambda(account_id: str, event: Any, fn_arn: str, region: str) -> None:
            self._deliver(fn_arn, event)

        self._patch(notifications, "_get_s3_event", s3_event)
        self._patch(notifications, "_invoke_awslambda", invoke_lambda)

    def _patch(self, module: Any, name: str, value: Any) -> None:
        self._patches.append((module, name, getattr(module, name)))
        setattr(module, name, value)

    def remove(self) -> None:
        for module, name, value in reversed(self._patches):
            setattr(module, name, value)
        self._patches.clear()


__all__ = ["Deliver", "S3EventHook"]
