"""Pipeline throughput and cost per configuration on the local cloud (asserts nothing).

    python -m bench.bench_pipeline [--images 60] [--concurrency 5] [--batch-size 10]
                                   [--pool 10] [--groups 5] [--profile published|zero]
                                   [--latency 0.4] [--put-latency 0.08]
                                   [--get-latency 0.03] [--s3-latency 0.02]

Uploads N small JPEGs to the local cloud's source bucket with the embedder's event
source disabled (S3 events and the router fill the FIFO queue; the fill rate is printed
too), then enables it and times the drain through the production embedder (GetVectors
-> S3 GET -> stand-in Bedrock -> PutVectors), with injected latency on every service the
embedder waits on (:data:`PUBLISHED`; ``--profile zero`` injects none, to see the local
pipeline's own speed).

One table row per configuration. By default: the design defaults (c=5, batch 1), c=5
batch 10 pool 10, and the defaults with every message in ONE message group (a FIFO
event source runs one batch per group at a time). Giving ``--batch-size``, ``--pool``
or ``--concurrency`` runs that one configuration (plus one group unless skipped).

Columns: images/s; utilisation = rate / ceiling, the ceiling being
:func:`imgsearch.pricing.throughput` for the injected service times (the model the
backfill's dry run uses); Lambda billed GB-seconds per image, from the local runtime's
measured handler durations and the configured memory; PutVectors requests per image
(counted at the front server); and $ per 1M images by service from
:func:`imgsearch.pricing.cost_per_million`, with Lambda from the measured duration.

A second table, "emulator ms per call", gives the front server's own time per call of
each operation (injected latency left out): what moto, fauxqs and the stand-in model
add on this machine, so the pipeline's overhead can be told from the emulator's.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from imgsearch.config import PipelineConfig, load_config
from imgsearch.pricing import CostInputs, ServiceTimes, cost_per_million, throughput
from localcloud.cloud import LocalCloud
from localcloud.samples import SampleImage, synthetic_images
from localcloud.services.calls import CallTime
from scripts.backfill.estimate import METADATA_OVERHEAD_BYTES, VECTOR_KEY_BYTES

SERVICES = ("bedrock", "lambda", "sqs", "s3vectors_put", "s3_get")

PUBLISHED = ServiceTimes(bedrock=0.4, s3_get=0.02, get_vectors=0.03, put_vectors=0.08)
"""The default latency profile (seconds per call), and where each figure comes from:

* Bedrock image embedding, 400 ms: AWS publishes no latency for Nova Multimodal
  Embeddings; an assumption, the order of a sub-second synchronous InvokeModel of one
  image. Measure yours with the embedder's ``EmbeddingLatency`` metric and pass it.
* S3 GET, 20 ms (GetObject and HeadObject): the S3 performance guide ("Timeouts and
  retries for latency-sensitive applications") puts the median latency of small
  requests (< 512 KB) "in the tens of milliseconds".
* GetVectors, 30 ms, and PutVectors, 80 ms: no published per-call figure; assumptions.
  S3 Vectors publishes "as low as 100 milliseconds for warm queries" (S3 Vectors best
  practices) for QueryVectors, a similarity search; a GetVectors by key does less and
  is put near an S3 GET; a PutVectors is a durable write of the batch, between the two.
"""
ZERO = ServiceTimes(bedrock=0.0)

EMULATOR_OPS = (
    ("bedrock:InvokeModel", "Invoke"),
    ("s3:GetObject", "S3 GET"),
    ("s3:HeadObject", "S3 HEAD"),
    ("s3:PutObject", "S3 PUT"),
    ("s3vectors:GetVectors", "GetVec"),
    ("s3vectors:PutVectors", "PutVec"),
    ("sqs:ReceiveMessage", "SQS recv"),
    ("sqs:DeleteMessageBatch", "SQS del"),
)
"""Columns of the emulator table. The SQS ones are the event source's calls, timed at the
client (the local SQS is reached directly, not through the front server)."""


def inject(cloud: LocalCloud, times: ServiceTimes) -> None:
    """Put the latency profile on the local cloud's services (zero: no rule)."""
    rules = (
        ("bedrock", "InvokeModel", times.bedrock),
        ("s3", "GetObject", times.s3_get),
        ("s3", "HeadObject", times.s3_get),
        ("s3vectors", "GetVectors", times.get_vectors),
        ("s3vectors", "PutVectors", times.put_vectors),
    )
    for service, operation, seconds in rules:
        if seconds > 0:
            cloud.faults.latency(service, operation, seconds)  # type: ignore[arg-type]


@dataclass
class Row:
    label: str
    images: int
    seconds: float
    fill_seconds: float
    ceiling: float
    limited_by: str
    gb_seconds_per_image: float
    puts_per_image: float
    costs: dict[str, float]
    handler_ms: float
    embedded: int
    violations: int
    emulator: dict[str, CallTime]

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    def line(self) -> str:
        cost = " ".join(f"{self.costs[s]:8.2f}" for s in SERVICES)
        return (
            f"{self.label:<20} {self.rate:7.2f} {self.rate / self.ceiling:6.1%} "
            f"{self.ceiling:8.1f} {self.images / self.fill_seconds:6.1f} "
            f"{self.gb_seconds_per_image:8.4f} {self.puts_per_image:6.2f} "
            f"{cost} {sum(self.costs.values()):8.2f} {self.handler_ms:7.0f} "
            f"{self.embedded:>4}/{self.images:<4} {self.violations}"
        )

    def emulator_line(self) -> str:
        cells = []
        for name, _ in EMULATOR_OPS:
            t = self.emulator.get(name)
            cells.append(f"{t.ms_per_call:8.1f}" if t else f"{'-':>8}")
        return f"{self.label:<20} " + " ".join(cells)


HEADER = (
    f"{'configuration':<20} {'img/s':>7} {'util':>6} {'ceiling':>8} {'fill/s':>6} "
    f"{'GB-s/img':>8} {'put/img':>6} "
    + " ".join(f"{s[:8]:>8}" for s in SERVICES)
    + f" {'$/1M':>8} "
    f"{'ms/inv':>7} {'embedded':>9} viol"
)
EMULATOR_HEADER = f"{'configuration':<20} " + " ".join(f"{short:>8}" for _, short in EMULATOR_OPS)


def run(label: str, images: list[SampleImage], cfg: PipelineConfig, times: ServiceTimes) -> Row:
    with LocalCloud.start(cfg) as cloud:
        assert cloud.embedder is not None and cloud.event_source is not None
        inject(cloud, times)
        s3 = cloud.client("s3")
        bucket = cloud.resources.source_bucket
        before = cloud.front.call_times.snapshot()
        polled = cloud.event_source.call_times.snapshot()
        # Fill the queue first (uploads, S3 events, router) with the event source
        # disabled, then time the drain: the figure is the embedder's, not the uploader's.
        cloud.event_source.disable()
        filling = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(lambda im: s3.put_object(Bucket=bucket, Key=im.key, Body=im.data), images)
            )
        deadline = time.monotonic() + 600
        while (snap := cloud.snapshot()).queued < len(images):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the queue never filled: {snap.line()}")
            time.sleep(0.05)
        fill_seconds = time.perf_counter() - filling
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
        model = throughput(
            concurrency=cfg.embedder_concurrency,
            message_groups=cfg.message_groups,
            batch_size=cfg.batch_size,
            pool_size=cfg.embed_pool_size,
            times=times,
        )
        return Row(
            label=label,
            images=n,
            seconds=elapsed,
            fill_seconds=fill_seconds,
            ceiling=model.images_per_second,
            limited_by=model.limited_by,
            gb_seconds_per_image=busy * cfg.embedder_memory_mb / 1024 / n,
            puts_per_image=puts / n,
            costs=cost_per_million(work),
            handler_ms=1000 * busy / invocations,
            embedded=cloud.ledger.counts["embedded"],
            violations=len(cloud.accounting().violations),
            emulator={
                **cloud.front.call_times.since(before),
                **cloud.event_source.call_times.since(polled),
            },
        )


def configurations(args: argparse.Namespace) -> list[tuple[str, dict[str, int]]]:
    """The rows to run: the three reference configurations, or the one asked for."""
    if (
        args.concurrency is None
        and args.batch_size is None
        and args.pool is None
        and not args.groups
    ):
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
        label = f"c={c} b={b} pool={p}"
        if args.groups:
            # Few groups, many images each: batches come out of one group, as from a
            # backlog (SQS returns as many messages of one group as it can).
            chosen["message_groups"] = args.groups
            label += f" g={args.groups}"
        runs = [(label, chosen)]
        single = {**chosen, "message_groups": 1}
    if not args.skip_single_group:
        runs.append(("one message group", single))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--concurrency", type=int, help="embedder_concurrency (one config)")
    parser.add_argument("--batch-size", type=int, help="batch_size, 1..10 (one config)")
    parser.add_argument("--pool", type=int, help="embed_pool_size (one config)")
    parser.add_argument("--groups", type=int, help="message_groups (one config; default 64)")
    parser.add_argument(
        "--profile",
        choices=("published", "zero"),
        default="published",
        help="latency profile: the published figures (PUBLISHED) or none at all",
    )
    parser.add_argument("--latency", type=float, help="Bedrock InvokeModel latency (s)")
    parser.add_argument("--put-latency", type=float, help="PutVectors latency (s)")
    parser.add_argument("--get-latency", type=float, help="GetVectors latency (s)")
    parser.add_argument("--s3-latency", type=float, help="S3 GetObject/HeadObject latency (s)")
    parser.add_argument("--skip-single-group", action="store_true")
    args = parser.parse_args()

    base = PUBLISHED if args.profile == "published" else ZERO
    times = ServiceTimes(
        bedrock=base.bedrock if args.latency is None else args.latency,
        s3_get=base.s3_get if args.s3_latency is None else args.s3_latency,
        get_vectors=base.get_vectors if args.get_latency is None else args.get_latency,
        put_vectors=base.put_vectors if args.put_latency is None else args.put_latency,
    )
    images = list(synthetic_images(args.images))
    megabytes = sum(len(i.data) for i in images) / 1e6
    print(
        f"pipeline benchmark: {args.images} images ({megabytes:.1f} MB); injected latency "
        f"Bedrock {times.bedrock * 1000:.0f} ms, S3 GET {times.s3_get * 1000:.0f} ms, "
        f"GetVectors {times.get_vectors * 1000:.0f} ms, PutVectors {times.put_vectors * 1000:.0f} "
        "ms (per batch)"
    )
    print("ceiling: imgsearch.pricing.throughput for these times; fill/s: uploads + S3 events +")
    print("router into the queue; GB-s/img measured (handler time x configured memory); $ per 1M")
    print("images by service at list prices (imgsearch.pricing), Lambda from that duration.")
    print(HEADER, flush=True)
    rows = []
    for label, overrides in configurations(args):
        # One group runs one batch at a time: half the images give its rate as well, in
        # half the time (``make bench`` runs every benchmark).
        share = images[: max(10, len(images) // 2)] if label == "one message group" else images
        row = run(label, share, load_config(overrides=overrides), times)
        rows.append(row)
        print(row.line(), flush=True)
    print()
    print("emulator ms per call (the local cloud's own time, injected latency left out;")
    print("SQS: the event source's calls, client side):")
    print(EMULATOR_HEADER)
    for row in rows:
        print(row.emulator_line())


if __name__ == "__main__":
    main()
