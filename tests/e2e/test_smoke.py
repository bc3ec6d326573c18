"""``make smoke`` on the local cloud: the same smoke run the real account gets, in CI.

The smoke CLI is called as ``make smoke`` calls it, with the cloud's environment
(``AWS_ENDPOINT_URL``...). One test shows it passes and leaves nothing behind; one shows
a pipeline that loses a vector fails it (exit 1, the step named), still cleaned up.
"""

from __future__ import annotations

import pytest

from imgsearch.vectors import VectorIndex
from localcloud.cloud import LocalCloud
from scripts.ops.index_listing import list_vectors
from scripts.smoke.cli import main
from scripts.smoke.stack import SMOKE_PREFIX

pytestmark = pytest.mark.e2e


def _smoke(cloud: LocalCloud, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    with cloud.environ():
        code = main(["run", *argv])
    out, err = capsys.readouterr()
    return code, out + err


def _leftovers(cloud: LocalCloud) -> tuple[list[str], list[str]]:
    """Objects under the smoke prefix, and vectors of any object."""
    listing = cloud.client("s3").list_objects_v2(
        Bucket=cloud.resources.source_bucket, Prefix=SMOKE_PREFIX
    )
    objects = [o["Key"] for o in listing.get("Contents") or []]
    index = VectorIndex(
        cloud.client("s3vectors"), cloud.cfg.vector_bucket_name, cloud.cfg.index_name
    )
    return objects, [str(v["key"]) for v in list_vectors(index)]


def test_smoke_passes_on_the_local_cloud_and_cleans_up(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _smoke(cloud, capsys, "--timeout", "90")

    assert code == 0, out
    steps = [line for line in out.splitlines() if line.startswith("smoke: ") and ": ok: " in line]
    names = [line.split(": ")[1] for line in steps]
    assert names == [
        "upload",
        "vectors",
        "search by text",
        "search by image",
        "overwrite",
        "delete",
        "index matches bucket",
        "verify --all",
        "cleanup",
    ], out
    assert "año 1.png" in out  # the key with a space and unicode went through
    assert "FAILED" not in out
    assert _leftovers(cloud) == ([], [])


def test_smoke_fails_when_the_pipeline_loses_a_vector(
    cloud: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    # S3 Vectors refuses every write of blue.png's vector: the embedder retries, then the
    # message goes to the DLQ, and the vector never appears.
    cloud.faults.s3vectors_error("PutVectors", match="blue.png")

    code, out = _smoke(cloud, capsys, "--timeout", "8")

    assert code == 1, out
    assert "smoke: vectors: FAILED: after 8 s:" in out
    assert "blue.png': want " in out
    assert "search by text" not in out  # later steps are not run on a broken index
    assert "smoke: cleanup: ok:" in out
    assert "smoke: FAILED (vectors)" in out
    objects, _ = _leftovers(cloud)
    assert objects == []
