"""The backfill on the local cloud: images that never sent an event become vectors.

The source bucket's notifications are switched off while the images are uploaded (as
for objects that were there before the stack), an inventory report is written the way
S3 writes it, and ``imgsearch-backfill latest`` finds everything else itself: the
inventory bucket, source bucket and queue from the stack outputs the local cloud
publishes, the endpoints from ``AWS_ENDPOINT_URL*``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from localcloud.samples import sample_set
from scripts.backfill.cli import main
from tests.e2e.conftest import assert_accounted, upload
from tests.unit import backfill_support as bs

pytestmark = pytest.mark.e2e


def _backfill(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str], *argv: str
) -> dict[str, object]:
    with cloud.environ():
        code = main(["latest", "--progress", "none", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary: dict[str, object] = json.loads(out)
    return summary


def test_backfill_indexes_existing_images_once(
    cloud: LocalCloud,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    s3 = cloud.client("s3")
    source, inventory = cloud.resources.source_bucket, cloud.resources.inventory_bucket
    s3.put_bucket_notification_configuration(Bucket=source, NotificationConfiguration={})
    samples = sample_set(("coffee", "rocket"), max_side=128)
    for s in samples:
        upload(cloud, s.key, s.data)
    upload(cloud, "photos/notes.txt", b"not an image")
    listed = s3.list_objects_v2(Bucket=source)["Contents"]
    objs = [bs.Obj(o["Key"], size=o["Size"], etag=o["ETag"].strip('"')) for o in listed]
    bs.report(objs, source=source, dest_bucket=inventory, dest_prefix="").put_to(s3, inventory)

    summary = _backfill(cloud, capsys)
    assert summary["sent"] == len(samples) and summary["skipped"] == {"suffix": 1}
    report = assert_accounted(cloud)
    assert report.vectors == len(samples)
    assert cloud.ledger.counts["embedded"] == len(samples)

    # Running the whole backfill again costs no embedding: the messages collapse in the
    # queue (same dedup ids) or the embedder finds the vectors unchanged.
    again = _backfill(cloud, capsys, "--restart")
    assert again["sent"] == len(samples)
    report = assert_accounted(cloud)
    assert report.vectors == len(samples)
    assert cloud.ledger.counts["embedded"] == len(samples)
