"""Pipeline throughput and cost per configuration on the local cloud (asserts nothing).

    python -m bench.bench_pipeline [--images 80] [--concurrency 5] [--batch-size 10]
                                   [--pool 10] [--latency 0.4]

Uploads N small JPEGs to the local cloud's source bucket with the embedder's event
source disabled (S3 events and the router fill the FIFO queue), then enables it and
times the drain through the production embedder (S3 GET -> stand-in Bedrock -> S3
Vectors), with injected service latencies: Bedrock image embedding, PutVectors and
GetVectors (``--latency``, ``--put-latency``, ``--get-latency``). S3 GET gets no
injected latency (the local cloud's faults cover Bedrock and S3 Vectors only).

One table row per configuration. By default: the design defaults (c=5, batch 1), c=5
batch 10 pool 10, and the defaults with every message in ONE message group (a FIFO
event source runs one batch per group at a time). Giving ``--batch-size``, ``--pool``
or ``--concurrency`` runs that one configuration (plus one group unless skipped).

Columns: images/s; utilisation = rate / ceiling, where the ceiling is
min(concurrency, message groups) x min(batch, pool) / per-image service time (the sum of
the injected latencies); Lambda billed GB-seconds per image, from the local runtime's
measured handler durations and the configured memory; PutVectors requests per image
(counted at the front server); and $ per 1M images by service from
:func:`imgsearch.pricing.cost_per_million`, with Lambda from the measured duration.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from imgsearch.config import PipelineConfig, load_config
from imgsearch.pricing import CostInputs, cost_per_million
from localcloud.cloud import LocalCloud
from localcloud.samples import SampleImage, synthetic_images
from localcloud.services.faults import FaultRule
from scripts.backfill.estimate import METADATA_OVERHEAD_BYTES, VECTOR_KEY_BYTES

SERVICES = ("bedrock", "lambda", "sqs", "s3vectors_put", "s3_get")


@dataclass(frozen=True)
class Latency:
    """Injected per-call service times (seconds)."""

    bedrock: float
    put: float
    get: float

    @property
    def per_image(self) -> float:
        return self.bedrock + self.put + self.get


@dataclass
class Row:
    label: str
    images: int
    seconds: float
    ceiling: float
    gb_seconds_per_image: float
    puts_per_image: float
    costs: dict[str, float]
    handler_ms: float
    embedded: int
    violations: int

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    def line(self) -> str:
        cost = " ".join(f"{self.costs[s]:8.2f}" for s in SERVICES)
        return (
            f"{self.label:<22} {self.rate:8.2f} {self.rate / self.ceiling:6.1%} "
            f"{self.ceiling:7.1f} {self.gb_seconds_per_image:8.4f} {self.puts_per_image:6.2f} "
            f"{cost} {sum(self.costs.values()):8.2f} {self.handler_ms:7.0f} "
            f"{self.embedded:>4}/{self.images:<4} {self.violations}"
        )


HEADER = (
    f"{'configuration':<22} {'img/s':>8} {'util':>6} {'ceiling':>7} {'GB-s/img':>8} "
    f"{'put/img':>6} " + " ".join(f"{s[:8]:>8}" for s in SERVICES) + f" {'$/1M':>8} "
    f"{'ms/inv':>7} {'embedded':>9} viol"
)


def run(label: str, images: list[SampleImage], cfg: PipelineConfig, latency: Latency) -> Row:
    with LocalCloud.start(cfg) as cloud:
        assert cloud.embedder is not None and cloud.event_source is not None
        cloud.faults.bedrock_latency(latency.bedrock)
        for operation, seconds in (("PutVectors", latency.put), ("GetVectors", latency.get)):
            if seconds:
                cloud.faults.add(FaultRule("s3vectors", None, operation, latency_seconds=seconds))
        s3 = cloud.client("s3")
        bucket = cloud.resources.source_bucket
        # Fill the queue first (uploads, S3 events, router) with the event source
        # disabled, then time the drain: the figure is the embedder's, not the uploader's.
        cloud.event_source.disable()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(lambda im: s3.put_object(Bucket=bucket, Key=im.key, Body=im.data), images)
            )
        deadline = time.monotonic() + 600
        while (snap := cloud.snapshot()).queued < len(images):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the queue never filled: {snap.line()}")
            time.sleep(0.2)
        puts_before = cloud.front.requests.get("s3vectors:PutVectors", 0)
        started = time.perf_counter()
        cloud.event_source.enable()
        cloud.wait_idle(timeout=3600, interval=0.25)
        # wait_idle confirms calm over a few polls: the last outcome marks the end.
        elapsed = cloud.ledger.last_at - started
        n = len(images)
        invocations = max(1, cloud.embedder.stats["invocations"])
        busy = cloud.embedder.busy_seconds
        puts = cloud.front.requests.get("s3vectors:PutVectors", 0) - puts_before
        avg_key = sum(len(i.key.encode()) for i in images) / n
        work = CostInputs(
            model_family=cfg.model.family,
            batch_size=cfg.batch_size,
            # measured handler time per image, scaled to a full batch
            seconds_per_invocation=busy / n * cfg.batch_size,
            memory_mb=cfg.embedder_memory_mb,
            architecture=cfg.architecture,
            vector_bytes=cfg.dimension * 4
            + VECTOR_KEY_BYTES
            + round(2 * avg_key)
            + METADATA_OVERHEAD_BYTES,
            images_per_send=10,  # the router sends with SendMessageBatch
        )
        parallel = min(cfg.embedder_concurrency, cfg.message_groups) * min(
            cfg.batch_size, cfg.embed_pool_size
        )
        return Row(
            label=label,
            images=n,
            seconds=elapsed,
            ceiling=parallel / latency.per_image,
            gb_seconds_per_image=busy * cfg.embedder_memory_mb / 1024 / n,
            puts_per_image=puts / n,
            costs=cost_per_million(work),
            handler_ms=1000 * busy / invocations,
            embedded=cloud.ledger.counts["embedded"],
            violations=len(cloud.accounting().violations),
        )


def configurations(args: argparse.Namespace) -> list[tuple[str, dict[str, int]]]:
    """The rows to run: the three reference configurations, or the one asked for."""
    if args.concurrency is None and args.batch_size is None and args.pool is None:
        runs = [
            ("defaults c=5 b=1", {"embedder_concurrency": 5, "batch_size": 1}),
            (
                "c=5 b=10 pool=10",
                {"embedder_concurrency": 5, "batch_size": 10, "embed_pool_size": 10},
            ),
        ]
        single = {"embedder_concurrency": 5, "batch_size": 1, "message_groups": 1}
    else:
        base = load_config()
        c = args.concurrency or base.embedder_concurrency
        b = args.batch_size or base.batch_size
        p = args.pool or base.embed_pool_size
        chosen = {"embedder_concurrency": c, "batch_size": b, "embed_pool_size": p}
        runs = [(f"c={c} b={b} pool={p}", chosen)]
        single = {**chosen, "message_groups": 1}
    if not args.skip_single_group:
        runs.append(("one message group", single))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=80)
    parser.add_argument("--concurrency", type=int, help="embedder_concurrency (one config)")
    parser.add_argument("--batch-size", type=int, help="batch_size, 1..10 (one config)")
    parser.add_argument("--pool", type=int, help="embed_pool_size (one config)")
    # Default latencies: the latency profile (Bedrock image embedding ~400 ms,
    # PutVectors ~80 ms, GetVectors ~30 ms); measure your account's with the
    # EmbeddingLatency metric and pass them here.
    parser.add_argument("--latency", type=float, default=0.4, help="Bedrock latency (s)")
    parser.add_argument("--put-latency", type=float, default=0.08, help="PutVectors (s)")
    parser.add_argument("--get-latency", type=float, default=0.03, help="GetVectors (s)")
    parser.add_argument("--skip-single-group", action="store_true")
    args = parser.parse_args()

    latency = Latency(args.latency, args.put_latency, args.get_latency)
    images = list(synthetic_images(args.images))
    megabytes = sum(len(i.data) for i in images) / 1e6
    print(
        f"pipeline benchmark: {args.images} images ({megabytes:.1f} MB); injected latency "
        f"Bedrock {latency.bedrock * 1000:.0f} ms, PutVectors {latency.put * 1000:.0f} ms, "
        f"GetVectors {latency.get * 1000:.0f} ms, S3 GET none"
    )
    print("GB-s/img is measured (local runtime handler time x configured memory); $ per 1M")
    print("images by service at list prices (imgsearch.pricing), Lambda from that duration.")
    print(HEADER)
    for label, overrides in configurations(args):
        row = run(label, images, load_config(overrides=overrides), latency)
        print(row.line(), flush=True)


if __name__ == "__main__":
    main()
