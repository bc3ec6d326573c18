"""Messages of one group, about different objects, run at once in a batch.

A FIFO queue with a backlog hands Lambda batches of one message group ("as many
messages with the same message group ID as possible"): were a group run one message
after the other, ``embed_pool_size`` would buy nothing at scale. Order matters per
object (the same key's messages run in batch order), and what followed a failure in
its group is handed back afterwards (``hold_back_after_failures``).

The clients are fakes at the network edge; S3 ``GetObject`` meets its peers at a
barrier, so the test sees concurrency as an order of events, not as a duration.
"""

from __future__ import annotations

import io
import json
import threading
from typing import Any

from botocore.exceptions import ClientError

from imgsearch.batch import BatchItem, BatchRunner
from imgsearch.config import PipelineConfig, load_config
from imgsearch.embeddings import Embedder
from imgsearch.ingest import ObjectConverger
from imgsearch.messages import for_backfill
from imgsearch.vectors import VectorIndex
from tests.unit.imaging import jpeg

ETAG = "0123456789abcdef0123456789abcdef"


class S3:
    """Each GetObject waits until ``peers`` reads are under way at once (or gives up)."""

    def __init__(self, data: bytes, peers: int) -> None:
        self.data = data
        self.barrier = threading.Barrier(peers, timeout=5)
        self.met = 0
        self.lock = threading.Lock()
        self.order: list[str] = []

    def get_object(self, *, Key: str, **_: Any) -> dict[str, Any]:
        with self.lock:
            self.order.append(Key)
        try:
            self.barrier.wait()
            with self.lock:
                self.met += 1
        except threading.BrokenBarrierError:
            pass
        size = len(self.data)
        return {
            "Body": io.BytesIO(self.data),
            "ContentRange": f"bytes 0-{size - 1}/{size}",
            "ETag": f'"{ETAG}"',
        }

    def head_object(self, **_: Any) -> dict[str, Any]:
        return {"ETag": f'"{ETAG}"', "ContentLength": len(self.data)}


class Bedrock:
    def __init__(self, dimension: int) -> None:
        vector = [((i * 37) % 101) / 101.0 - 0.49 for i in range(dimension)]
        self.body = json.dumps({"embeddings": [{"embeddingType": "IMAGE", "embedding": vector}]})

    def invoke_model(self, **_: Any) -> dict[str, Any]:
        return {"body": io.BytesIO(self.body.encode())}


class Vectors:
    def __init__(self) -> None:
        self.puts: list[int] = []

    def get_vectors(self, **_: Any) -> dict[str, Any]:
        return {"vectors": []}

    def put_vectors(self, *, vectors: list[Any], **_: Any) -> dict[str, Any]:
        self.puts.append(len(vectors))
        return {}


def converger_on(cfg: PipelineConfig, s3: S3, vectors: Vectors) -> ObjectConverger:
    """The real converger over the duck-typed network edge (S3, Bedrock, S3 Vectors)."""
    fakes: Any = (s3, Bedrock(cfg.dimension), vectors)
    return ObjectConverger(
        cfg,
        fakes[0],
        Embedder(fakes[1], cfg.model_ref, cfg.dimension),
        VectorIndex(fakes[2], cfg.vector_bucket_name, cfg.index_name, dimension=cfg.dimension),
    )


def _runner(s3: S3, vectors: Vectors, pool: int) -> BatchRunner:
    cfg = load_config().replace(batch_size=10, embed_pool_size=pool, message_groups=1)
    return BatchRunner(converger_on(cfg, s3, vectors), pool_size=pool)


def _item(i: int, key: str, size: int) -> BatchItem:
    msg = for_backfill("src", key, size=size, etag=ETAG)
    return BatchItem(f"m{i}", msg.to_json(), group_id="0")


def test_one_groups_objects_are_embedded_at_once() -> None:
    data = jpeg(color=3)
    s3, vectors = S3(data, peers=4), Vectors()
    items = [_item(i, f"photos/{i}.jpg", len(data)) for i in range(4)]

    results = _runner(s3, vectors, pool=4).run(items)

    assert s3.met == 4  # all four reads were under way together
    assert [results[i.message_id].outcome for i in items] == ["embedded"] * 4
    assert vectors.puts == [4]  # still one PutVectors for the batch


def test_one_objects_messages_still_run_in_batch_order() -> None:
    data = jpeg(color=4)
    s3, vectors = S3(data, peers=1), Vectors()
    items = [
        _item(0, "photos/a.jpg", len(data)),
        _item(1, "photos/b.jpg", len(data)),
        _item(2, "photos/a.jpg", len(data)),
    ]

    results = _runner(s3, vectors, pool=4).run(items)

    # a.jpg's second message finds the first one's vector waiting for the write
    assert [results[i.message_id].outcome for i in items] == ["embedded", "embedded", "unchanged"]
    assert s3.order.count("photos/a.jpg") == 1


class FailingS3(S3):
    """S3 that refuses one key (a transient 503), so that message fails."""

    def __init__(self, data: bytes, refused: str) -> None:
        super().__init__(data, peers=1)
        self.refused = refused

    def get_object(self, *, Key: str, **kwargs: Any) -> dict[str, Any]:
        if Key == self.refused:
            with self.lock:
                self.order.append(Key)
            raise ClientError(
                {"Error": {"Code": "ServiceUnavailable", "Message": "slow down"}}, "GetObject"
            )
        return super().get_object(Key=Key, **kwargs)


def test_a_message_not_yet_started_after_its_groups_failure_is_not_started() -> None:
    data = jpeg(color=5)
    s3, vectors = FailingS3(data, refused="photos/first.jpg"), Vectors()
    items = [_item(0, "photos/first.jpg", len(data)), _item(1, "photos/second.jpg", len(data))]

    results = _runner(s3, vectors, pool=1).run(items)

    assert s3.order == ["photos/first.jpg"]  # the second was never started
    assert [results[i.message_id].reason for i in items][1] == "earlier_message_in_group_failed"
    assert vectors.puts == []
