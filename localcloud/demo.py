"""``python -m localcloud.demo`` (``make demo``): the whole pipeline on this machine.

1. Starts the local cloud and creates what the stack would (same names, same config).
2. Uploads sample photos from scikit-image, with resized / cropped / recompressed /
   PNG copies of each (so image search has true matches), plus one corrupt file.
3. Shows progress while S3 events go through the router, the FIFO queue and the
   embedder into S3 Vectors.
4. Runs a text search and an image search with the project's CLI
   (``python -m scripts.imgsearch``), exactly as a user would against AWS.
5. Runs one search through the search API (``imgsearch search --api``: a SigV4-signed
   ``POST /search`` to the local HTTP API, answered by the search Lambda).
6. Deletes one photo and shows that its vector is gone.
7. Ends with one line: objects uploaded, vectors stored, failures by reason, DLQ depth.

The embeddings come from the local stand-in model (colour and layout features), not
from Amazon Nova: image search finds look-alikes and text search knows colour words.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from imgsearch.config import load_config
from imgsearch.messages import vector_key
from localcloud.cloud import LocalCloud
from localcloud.observe import CloudSnapshot
from localcloud.samples import PHOTOS, SampleImage, corrupt_jpeg, sample_set

REPO_ROOT = Path(__file__).resolve().parents[1]
LOG_FILE = REPO_ROOT / ".local" / "demo-lambda.log"
DEMO_PHOTOS = PHOTOS[:10]
CORRUPT_KEY = "photos/broken-upload.jpg"
QUERY_IMAGE = "photos/coffee-cropped.jpg"
DELETED = "photos/coffee.jpg"


def say(text: str = "") -> None:
    print(text, flush=True)


def step(number: int, text: str) -> None:
    say(f"\n=== {number}. {text}")


def imgsearch(cloud: LocalCloud, *argv: str) -> int:
    """Run the project's CLI as a user would, pointed at the local cloud by its environment.

    A child process (``python -m scripts.imgsearch``): nothing imports ``scripts``.
    """
    say(f"$ imgsearch {' '.join(argv)}")
    done = subprocess.run(
        [sys.executable, "-m", "scripts.imgsearch", *argv],
        env={**os.environ, **cloud.env},
        cwd=REPO_ROOT,
        check=False,
    )
    return done.returncode


class Progress:
    """One status line while the pipeline drains (rewritten in place on a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stdout.isatty()
        self.last = 0.0
        self.started = time.monotonic()

    def __call__(self, snap: CloudSnapshot) -> None:
        now = time.monotonic()
        if now - self.last < (0.2 if self.tty else 2.0):
            return
        self.last = now
        done = sum(snap.outcomes.values())
        line = f"  [{now - self.started:5.1f}s] {done}/{self.total} processed | {snap.line()}"
        if self.tty:
            print("\r" + line[:150].ljust(150), end="", flush=True)
        else:
            say(line)

    def finish(self) -> None:
        if self.tty:
            print(flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud.demo", description=__doc__)
    parser.add_argument("--photos", type=int, default=len(DEMO_PHOTOS), help="how many photos")
    parser.add_argument(
        "--model-latency",
        type=float,
        default=0.15,
        metavar="SECONDS",
        help="time each stand-in model call takes, like a real model (default 0.15)",
    )
    parser.add_argument(
        "--throttle",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="fraction of model calls answered with ThrottlingException (default 0.1)",
    )
    args = parser.parse_args(argv)
    photos = PHOTOS[: max(2, min(args.photos, len(PHOTOS)))]

    say("Image search pipeline demo, on this machine: no AWS account, no network.")
    say("Embeddings come from a local STAND-IN model, not Amazon Nova (see README).")

    step(1, "Starting the local cloud and creating the stack's resources")
    started = time.monotonic()
    cfg = load_config()
    with LocalCloud.start(cfg, log_file=LOG_FILE) as cloud:
        res = cloud.resources
        say(f"  endpoint {cloud.endpoint} (ready in {time.monotonic() - started:.1f}s)")
        say(f"  source bucket s3://{res.source_bucket}/, queue {res.queue_url.rsplit('/', 1)[-1]}")
        say(f"  vector index {res.vector_bucket}/{res.index_name}: {cfg.dimension} dimensions,")
        say(f"  {cfg.distance_metric} distance, model {cfg.model_id} (stand-in)")

        cloud.faults.bedrock_latency(args.model_latency)
        throttle = cloud.faults.throttle_bedrock(fraction=args.throttle) if args.throttle else None
        say(
            f"  injected at the Bedrock edge: {args.model_latency * 1000:.0f} ms per model call, "
            f"{args.throttle:.0%} of calls throttled"
        )

        step(2, "Uploading sample photos with transformed copies")
        samples = sample_set(photos)
        uploads: list[SampleImage] = [
            *samples,
            SampleImage(CORRUPT_KEY, corrupt_jpeg(), "broken", "corrupt"),
        ]
        s3 = cloud.client("s3")
        progress = Progress(len(uploads))
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(
                pool.map(
                    lambda s: s3.put_object(
                        Bucket=res.source_bucket, Key=s.key, Body=s.data, ContentType=s.content_type
                    ),
                    uploads,
                )
            )
        size = sum(len(s.data) for s in uploads) / 1e6
        say(
            f"  {len(uploads)} objects ({size:.1f} MB): {len(photos)} photos, each as original, "
            "resized, cropped, recompressed and PNG, + 1 corrupt JPEG"
        )

        step(3, "Waiting for S3 events -> router -> FIFO queue -> embedder -> S3 Vectors")
        snap = cloud.wait_idle(300, progress=progress)
        progress.finish()
        say(f"  done {time.monotonic() - progress.started:.1f}s after the first upload")
        say(f"  {snap.line()}")
        if throttle is not None:
            say(
                f"  {throttle.fired} throttled model calls were retried by the embedder "
                "(backoff with jitter; the message goes back to SQS if the time runs out)"
            )

        cloud.faults.clear()  # the searches below run without injected faults

        step(4, "Text search: colour words (the stand-in model knows colours)")
        imgsearch(cloud, "search", "--text", "red", "--k", "5")
        imgsearch(cloud, "search", "--text", "blue", "--k", "3")

        step(5, "Image search: a cropped copy finds its original and the other copies")
        imgsearch(cloud, "search", "--image", f"s3://{res.source_bucket}/{QUERY_IMAGE}", "--k", "6")

        step(6, "The search API: the same query, signed (SigV4), through the HTTP API")
        say(f"  endpoint {res.search_api_url} (POST /search, GET /objects/..., GET /health)")
        imgsearch(cloud, "search", "--text", "red", "--k", "3", "--api")

        step(7, f"Deleting s3://{res.source_bucket}/{DELETED}")
        before = len(cloud.vector_keys())
        s3.delete_object(Bucket=res.source_bucket, Key=DELETED)
        cloud.wait_idle(120)
        after = len(cloud.vector_keys())
        gone = vector_key(res.source_bucket, DELETED) not in cloud.vector_keys()
        say(f"  vectors in the index: {before} -> {after}; its vector is gone: {gone}")
        imgsearch(cloud, "get", f"s3://{res.source_bucket}/{DELETED}")

        step(8, "Summary")
        report = cloud.accounting()
        reasons = ", ".join(f"{r}={n}" for r, n in sorted(report.failures_by_reason.items()))
        say(
            f"objects uploaded: {len(uploads)}, vectors stored: {report.vectors}, "
            f"failures by reason: {reasons or 'none'}, DLQ depth: {report.in_dlq}"
        )
        if not report.ok:
            say("ACCOUNTING PROBLEM: " + "; ".join(report.violations))
            return 1
        say(
            f"Every object is accounted for (vector, recorded failure or DLQ). "
            f"Lambda logs: {LOG_FILE}. Total {time.monotonic() - started:.0f}s."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
