"""The smoke test's steps: what one deployed pipeline must do, end to end, on any cloud.

Every step talks to the deployment only through its public edges (S3 uploads and
deletes, the index, the operations library's search, ``imgsearch verify``), so the same
run accepts the local cloud and a real account. Everything it writes lies under one run
folder, ``imgsearch-smoke/<run-id>/``, and the last step removes it whatever happened
before. A step that fails stops the run (later steps depend on it); cleanup still runs.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from imgsearch.config import PipelineConfig
from imgsearch.converge import normalize_etag
from imgsearch.messages import vector_key
from imgsearch.pricing import PRICES
from imgsearch.search import IndexInfo, Searcher, image_from_bytes
from imgsearch.selection import KeySelection
from imgsearch.vectors import VectorIndex, stored_etag
from scripts.ops.index_listing import list_vectors, source_of
from scripts.smoke.png import RGB, colour_image
from scripts.smoke.stack import SMOKE_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3vectors import S3VectorsClient

RED: RGB = (220, 30, 30)
BLUE: RGB = (30, 60, 220)
GREEN: RGB = (40, 170, 60)
YELLOW: RGB = (235, 215, 40)
PURPLE: RGB = (140, 50, 170)

UPLOADS: dict[str, RGB] = {
    "red.png": RED,
    "blue.png": BLUE,
    # A space and non-ASCII: S3 events URL-encode the key (space as '+'), the router
    # must decode it, and the vector's metadata must name the key as it is.
    "My Photos/año 1.png": GREEN,
    "yellow.png": YELLOW,
}
OVERWRITTEN = "My Photos/año 1.png"
DELETED = "yellow.png"
POLL_SECONDS = 1.0


class StepFailed(Exception):
    """A step's check did not hold; the message says what was expected and seen."""


@dataclass
class StepResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"smoke: {self.name}: {'ok' if self.ok else 'FAILED'}: {self.detail}"


@dataclass
class Usage:
    """What the run spent, for the cost estimate."""

    embeddings: int = 0
    queries: int = 0
    puts: int = 0


@dataclass
class SmokeReport:
    run_prefix: str
    steps: list[StepResult] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)


def new_run_prefix() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{SMOKE_PREFIX}{stamp}-{secrets.token_hex(2)}/"


def estimate_cost_usd(cfg: PipelineConfig, usage: Usage) -> float:
    """The run's variable cost at list prices (``imgsearch.pricing``): an estimate."""
    per_image = (
        PRICES.bedrock_marengo_image_embedding
        if "marengo" in cfg.model.model_id
        else PRICES.bedrock_nova_image_embedding
    )
    bedrock = (usage.embeddings + usage.queries) * per_image
    put_gb = usage.puts * PRICES.s3vectors_put_min_billed_bytes / 1024**3
    gb_second = (
        PRICES.lambda_gb_second_arm64
        if cfg.architecture == "arm64"
        else PRICES.lambda_gb_second_x86_64
    )
    # Each embedding: one router and one embedder invocation, a few seconds at most.
    lambda_cost = (
        usage.embeddings
        * 2
        * (cfg.embedder_memory_mb / 1024 * 5 * gb_second + PRICES.lambda_per_million_requests / 1e6)
    )
    return bedrock + put_gb * PRICES.s3vectors_put_per_gb + lambda_cost


def _distance(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f}"


class SmokeRun:
    """One run of the steps against one deployment."""

    def __init__(
        self,
        cfg: PipelineConfig,
        *,
        s3: S3Client,
        s3vectors: S3VectorsClient,
        bedrock: BedrockRuntimeClient,
        source_bucket: str,
        index: IndexInfo,
        verify_all: Callable[[], str],
        run_prefix: str | None = None,
        timeout: float = 180.0,
        report: Callable[[StepResult], None] = lambda r: print(r.line(), flush=True),
    ) -> None:
        self.cfg = cfg
        self.s3 = s3
        self.bucket = source_bucket
        self.searcher = Searcher(cfg, bedrock=bedrock, s3vectors=s3vectors, s3=s3, index=index)
        self.index: VectorIndex = self.searcher.vectors
        self.verify_all = verify_all
        self.prefix = run_prefix or new_run_prefix()
        self.timeout = timeout
        self._report = report
        self.etags: dict[str, str] = {}
        """Object key -> the ETag its vector must carry (absent: no vector expected)."""
        self.result = SmokeReport(self.prefix)

    def key(self, name: str) -> str:
        return self.prefix + name

    # ------------------------------------------------------------------ driver

    def run(self) -> SmokeReport:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("upload", self.upload),
            ("vectors", self.wait_for_vectors),
            ("search by text", self.search_text),
            ("search by image", self.search_image),
            ("overwrite", self.overwrite),
            ("delete", self.delete),
            ("index matches bucket", self.index_matches_bucket),
            ("verify --all", self.verify_all),
        ]
        try:
            for name, step in steps:
                if not self._step(name, step):
                    break
        finally:
            self._step("cleanup", self.cleanup)
        return self.result

    def _step(self, name: str, step: Callable[[], str]) -> bool:
        try:
            result = StepResult(name, True, step())
        except StepFailed as exc:
            result = StepResult(name, False, str(exc))
        except Exception as exc:  # an AWS error in a step is that step's failure
            result = StepResult(name, False, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        self.result.steps.append(result)
        self._report(result)
        return result.ok

    # ------------------------------------------------------------------ steps

    def upload(self) -> str:
        selection = KeySelection.from_config(self.cfg)
        for name in UPLOADS:
            if not selection.matches(self.key(name)):
                raise StepFailed(
                    f"{self.key(name)!r} is outside the deployment's prefixes "
                    f"{list(self.cfg.prefixes)} / suffixes: the pipeline would ignore it; "
                    f"deploy with -c prefixes={SMOKE_PREFIX} (make smoke AWS=1 does)"
                )
        for name, colour in UPLOADS.items():
            self._put(name, colour_image(colour))
        return f"{len(UPLOADS)} PNG images to s3://{self.bucket}/{self.prefix}"

    def wait_for_vectors(self) -> str:
        waited = self._wait_until_index_matches()
        return f"{len(self.etags)} vectors with the objects' ETags after {waited:.0f} s"

    def search_text(self) -> str:
        hits = self.searcher.text("red", k=len(UPLOADS), filter=self._run_filter()).hits
        self.result.usage.queries += 1
        return self._expect_first(hits, "red.png", "text 'red'")

    def search_image(self) -> str:
        query = colour_image(BLUE, size=48, variant=3)  # a resized, reshaded copy
        image = image_from_bytes(query, "the smoke query image", self.cfg)
        hits = self.searcher.image(image, k=len(UPLOADS), filter=self._run_filter()).hits
        self.result.usage.queries += 1
        return self._expect_first(hits, "blue.png", "a resized copy of blue.png")

    def overwrite(self) -> str:
        before = self.etags[self.key(OVERWRITTEN)]
        self._put(OVERWRITTEN, colour_image(PURPLE))
        after = self.etags[self.key(OVERWRITTEN)]
        if after == before:
            raise StepFailed(f"{OVERWRITTEN!r}: the new bytes kept ETag {before}")
        waited = self._wait_until_index_matches()
        return f"{OVERWRITTEN!r}: vector ETag {before} -> {after} after {waited:.0f} s"

    def delete(self) -> str:
        self.s3.delete_object(Bucket=self.bucket, Key=self.key(DELETED))
        del self.etags[self.key(DELETED)]
        waited = self._wait_until_index_matches()
        return f"{DELETED!r}: vector gone after {waited:.0f} s"

    def index_matches_bucket(self) -> str:
        """Both directions, by listing: every object has its vector, no vector is extra."""
        objects: dict[str, str | None] = {}
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for obj in page.get("Contents") or []:
                objects[obj["Key"]] = normalize_etag(obj.get("ETag"))
        vectors: dict[str, str | None] = {}
        for vector in list_vectors(self.index):
            bucket, key = source_of(dict(vector.get("metadata") or {}))
            if bucket == self.bucket and key and key.startswith(self.prefix):
                vectors[key] = stored_etag(vector)
        problems = [
            f"{key!r}: object ETag {etag}, vector {vectors.get(key, 'missing')}"
            for key, etag in objects.items()
            if vectors.get(key) != etag
        ] + [f"{key!r}: vector of no object" for key in vectors if key not in objects]
        if problems:
            raise StepFailed("; ".join(sorted(problems)))
        return f"{len(objects)} objects, {len(vectors)} vectors under {self.prefix}"

    def cleanup(self) -> str:
        """Remove every object of the run; the pipeline must remove their vectors."""
        keys = [
            obj["Key"]
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            )
            for obj in page.get("Contents") or []
        ]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes 1000 keys
            chunk = keys[start : start + 1000]
            self.s3.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
        vector_keys = [vector_key(self.bucket, self.key(name)) for name in UPLOADS]
        deadline = time.monotonic() + self.timeout
        left = self.index.get(vector_keys)
        while left and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            left = self.index.get(vector_keys)
        if left:
            self.index.delete(list(left))
            raise StepFailed(
                f"{len(keys)} objects deleted, but the pipeline left {len(left)} vectors after "
                f"{self.timeout:.0f} s (deleted them directly)"
            )
        return f"{len(keys)} objects and their vectors removed from {self.prefix}"

    # ------------------------------------------------------------------ helpers

    def _put(self, name: str, data: bytes) -> None:
        response = self.s3.put_object(
            Bucket=self.bucket, Key=self.key(name), Body=data, ContentType="image/png"
        )
        etag = normalize_etag(response.get("ETag"))
        if etag is None:
            raise StepFailed(f"PutObject {self.key(name)!r} returned no ETag")
        self.etags[self.key(name)] = etag
        self.result.usage.embeddings += 1
        self.result.usage.puts += 1

    def _run_filter(self) -> dict[str, Any]:
        return {"source_key": {"$in": sorted(self.etags)}}

    def _expect_first(self, hits: list[Any], name: str, what: str) -> str:
        if not hits:
            raise StepFailed(f"{what}: no results among the run's images")
        top = hits[0]
        if top.key != self.key(name):
            found = ", ".join(f"{h.key} ({_distance(h.distance)})" for h in hits[:3])
            raise StepFailed(f"{what}: expected {self.key(name)!r} first, got {found}")
        return f"{what} -> {name} first (distance {_distance(top.distance)})"

    def _mismatches(self) -> list[str]:
        names = [self.key(n) for n in UPLOADS]
        stored = self.index.get([vector_key(self.bucket, k) for k in names])
        out = []
        for key in names:
            got = stored_etag(stored.get(vector_key(self.bucket, key)))
            want = self.etags.get(key)
            if got != want:
                out.append(f"{key!r}: want {'no vector' if want is None else want}, has {got}")
        return out

    def _wait_until_index_matches(self) -> float:
        """Poll GetVectors until every run key's vector is as expected, or fail at the deadline."""
        start = time.monotonic()
        while True:
            problems = self._mismatches()
            if not problems:
                return time.monotonic() - start
            if time.monotonic() - start > self.timeout:
                raise StepFailed(
                    f"after {self.timeout:.0f} s: " + "; ".join(problems) + " (see "
                    "`imgsearch status` and `imgsearch dlq list`)"
                )
            time.sleep(POLL_SECONDS)


__all__ = ["SmokeReport", "SmokeRun", "StepResult", "Usage", "estimate_cost_usd", "new_run_prefix"]
