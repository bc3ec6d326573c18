"""Fixtures for end-to-end tests on the local cloud (real handlers, no AWS account).

``cloud`` is a fresh :class:`localcloud.cloud.LocalCloud` per test, with short timings;
``make_cloud(**overrides)`` starts one with other config values. Other test modules can
reuse them with ``pytest_plugins = ["tests.e2e.conftest"]``.

:func:`assert_accounted` is the invariant every end-to-end test ends with: every object
is in exactly one of {vector stored, permanent failure recorded, message in a DLQ}.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from imgsearch.config import load_config
from imgsearch.embeddings import Embedder
from imgsearch.vectors import VectorIndex
from localcloud.accounting import AccountingReport
from localcloud.cloud import LocalCloud

E2E_CONFIG: dict[str, Any] = {
    # The shortest embedder timeout that leaves time for messages (it keeps 1 s in
    # reserve), and the visibility timeout AWS requires for it (6 x): redeliveries and
    # the DLQ still happen within a test.
    "visibility_timeout_seconds": 12,
    "embedder_timeout_seconds": 2,
    "max_receive_count": 3,
    "embedder_concurrency": 2,
    # IMGSEARCH_E2E_BATCH_SIZE=10 runs the whole suite with FIFO batches of up to 10
    # messages of one group (the local event source delivers them as SQS does);
    # test_pipeline and test_model_faults run at both sizes in every run.
    "batch_size": int(os.environ.get("IMGSEARCH_E2E_BATCH_SIZE", "1")),
}


@pytest.fixture
def make_cloud(tmp_path: Path) -> Iterator[Callable[..., LocalCloud]]:
    started: list[LocalCloud] = []

    def start(**overrides: Any) -> LocalCloud:
        cfg = load_config(overrides={**E2E_CONFIG, **overrides})
        cloud = LocalCloud.start(cfg, log_file=tmp_path / "lambda.log")
        started.append(cloud)
        return cloud

    yield start
    for cloud in started:
        cloud.close()


@pytest.fixture
def cloud(make_cloud: Callable[..., LocalCloud]) -> LocalCloud:
    return make_cloud()


def assert_accounted(cloud: LocalCloud) -> AccountingReport:
    """Wait for the pipeline to settle, then check the per-object invariant."""
    cloud.wait_idle(90)
    report = cloud.accounting()
    assert report.ok, "accounting invariant broken:\n" + "\n".join(report.violations)
    return report


def wait_queued(cloud: LocalCloud, count: int, timeout: float = 30.0) -> None:
    """Wait until ``count`` messages wait in the embed queue (e.g. while polling is off)."""
    deadline = time.monotonic() + timeout
    while (queued := cloud.snapshot().queued) < count:
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{queued} of {count} messages queued after {timeout:.0f}s")
        time.sleep(0.1)


def upload(cloud: LocalCloud, key: str, data: bytes) -> None:
    cloud.client("s3").put_object(Bucket=cloud.resources.source_bucket, Key=key, Body=data)


def nearest(
    cloud: LocalCloud, *, text: str | None = None, image: bytes | None = None, k: int = 5
) -> list[tuple[str, float]]:
    """(source key, distance) of the k nearest vectors, through the production modules."""
    cfg = cloud.cfg
    embedder = Embedder(cloud.client("bedrock-runtime"), cfg.model_ref, cfg.dimension)
    if text is not None:
        vector = embedder.embed_text(text, purpose=cfg.query_purpose)
    else:
        assert image is not None
        vector = embedder.embed_image(purpose=cfg.query_purpose, image_format="jpeg", data=image)
    index = VectorIndex(
        cloud.client("s3vectors"),
        cfg.vector_bucket_name,
        cfg.index_name,
        dimension=cfg.dimension,
        distance_metric=cfg.distance_metric,
    )
    return [
        (str(hit["metadata"]["source_key"]), float(hit["distance"]))
        for hit in index.query(vector, top_k=k)
    ]
