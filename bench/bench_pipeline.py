"""Pipeline throughput on the local cloud (prints figures, asserts nothing).

    python -m bench.bench_pipeline [--images 500] [--concurrency 5] [--latency 0.2]

Uploads N small JPEGs to the local cloud's source bucket with the embedder's event
source disabled (S3 events and the router fill the FIFO queue), then enables it and
times the drain through the production embedder (S3 GET -> stand-in Bedrock -> S3
Vectors), while every Bedrock call is held for an injected model latency. With ``c``
embedder environments and a model latency ``L`` the ceiling is ``c / L`` images per
second; utilisation is the achieved rate over that ceiling (target from the issue:
>= 90 %). The handler's time per message is printed next to it, as is the share of
time the environments were busy.

The same run is repeated with every message in ONE message group
(``message_groups=1``): a FIFO event source runs one batch per group at a time, so
the pipeline collapses to one image at a time. That is why the router spreads objects
over many groups.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from imgsearch.config import load_config
from localcloud.cloud import LocalCloud
from localcloud.samples import SampleImage, synthetic_images


@dataclass
class Run:
    label: str
    images: int
    seconds: float
    ceiling: float
    busy_fraction: float
    handler_ms: float
    embedded: int
    violations: int

    @property
    def rate(self) -> float:
        return self.images / self.seconds

    @property
    def utilisation(self) -> float:
        return self.rate / self.ceiling

    def line(self) -> str:
        return (
            f"{self.label:<26} {self.images:>5} images in {self.seconds:6.1f} s = "
            f"{self.rate:6.2f} images/s; ceiling {self.ceiling:5.1f}/s; "
            f"utilisation {self.utilisation:6.1%}; environments busy {self.busy_fraction:6.1%}; "
            f"handler {self.handler_ms:5.0f} ms/msg; embedded {self.embedded}, "
            f"accounting violations {self.violations}"
        )


def run(
    label: str, images: list[SampleImage], *, concurrency: int, latency: float, groups: int
) -> Run:
    cfg = load_config(overrides={"embedder_concurrency": concurrency, "message_groups": groups})
    with LocalCloud.start(cfg) as cloud:
        assert cloud.embedder is not None and cloud.event_source is not None
        cloud.faults.bedrock_latency(latency)
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
        started = time.perf_counter()
        cloud.event_source.enable()
        cloud.wait_idle(timeout=3600, interval=0.25)
        # wait_idle confirms calm over a few polls: the last outcome marks the end.
        elapsed = cloud.ledger.last_at - started
        invocations = cloud.embedder.stats["invocations"]
        return Run(
            label=label,
            images=len(images),
            seconds=elapsed,
            ceiling=concurrency / latency,
            busy_fraction=cloud.embedder.busy_seconds / (concurrency * elapsed),
            handler_ms=1000 * cloud.embedder.busy_seconds / max(1, invocations),
            embedded=cloud.ledger.counts["embedded"],
            violations=len(cloud.accounting().violations),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.2, help="injected model latency (s)")
    parser.add_argument("--skip-single-group", action="store_true")
    args = parser.parse_args()

    images = list(synthetic_images(args.images))
    megabytes = sum(len(i.data) for i in images) / 1e6
    print(
        f"pipeline benchmark: {args.images} images ({megabytes:.1f} MB), "
        f"{args.concurrency} embedder environments, model latency {args.latency * 1000:.0f} ms"
    )
    groups = load_config().message_groups
    spread = run(
        f"{groups} message groups",
        images,
        concurrency=args.concurrency,
        latency=args.latency,
        groups=groups,
    )
    print(spread.line())
    if not args.skip_single_group:
        single = run(
            "1 message group",
            images,
            concurrency=args.concurrency,
            latency=args.latency,
            groups=1,
        )
        print(single.line())
        print(
            f"spreading objects over message groups is {spread.rate / single.rate:.1f}x faster "
            f"here: a FIFO event source runs one batch per group at a time"
        )


if __name__ == "__main__":
    main()
