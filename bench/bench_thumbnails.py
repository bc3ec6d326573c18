"""What the result grid costs to load: originals against thumbnails (asserts nothing).

    python -m bench.bench_thumbnails [--images 100] [--distinct 4] [--side 4000x3000]

Seeds the local cloud's source bucket with camera-sized JPEGs (noise over gradients, so
they compress like photos: a few MB each; ``--distinct`` of them generated, each
uploaded under several keys, so every key is its own thumbnail), with the embedder's
event source disabled (nothing is embedded: the grid is the images a k=100 page lists).
Then ``imgsearch serve``'s app, in process on 127.0.0.1, answers the grid three ways,
with 6 connections at a time as a browser uses per host:

* before: the originals, as the page loaded them until now (presigned GETs);
* after, cold cache: ``/thumb`` for every image, each downloaded and resized once;
* after, warm cache: the same again, answered from the disk cache.

Printed per way: bytes transferred, seconds for the whole grid, and (thumbnails) the
time to the first thumbnail answered on a cold cache.
"""

from __future__ import annotations

import argparse
import io
import socket
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
import uvicorn
from PIL import Image

from imgsearch.config import load_config
from localcloud.cloud import LocalCloud
from scripts.imgsearch.commands.serve import web_context
from scripts.imgsearch.context import Context
from scripts.imgsearch.parser import build_parser
from scripts.web.app import Access, create_app

CONNECTIONS = 6
"""Parallel requests per host, as a browser makes them over HTTP/1.1."""


def photo_like(width: int, height: int, seed: int) -> bytes:
    """A JPEG that compresses like a photo: smooth gradients plus sensor-like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            128 + 90 * np.sin(x / (width / (2 + seed % 3)) + seed),
            128 + 90 * np.cos(y / (height / (1 + seed % 4))),
            128 + 60 * np.sin((x + y) / (width / 3)),
        ],
        axis=-1,
    )
    noisy = base + rng.normal(0, 12, size=base.shape).astype(np.float32)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@dataclass
class Load:
    label: str
    bytes: int
    seconds: float
    first: float | None = None

    def line(self) -> str:
        first = f"{self.first * 1000:8.0f} ms" if self.first is not None else f"{'-':>11}"
        return f"{self.label:<28} {self.bytes / 1e6:10.2f} MB {self.seconds:8.2f} s {first}"


def load_grid(client: httpx.Client, urls: list[str], label: str) -> Load:
    started = time.perf_counter()
    firsts: list[float] = []
    lock = threading.Lock()

    def one(url: str) -> int:
        response = client.get(url, follow_redirects=True)
        response.raise_for_status()
        with lock:
            if not firsts:
                firsts.append(time.perf_counter() - started)
        return len(response.content)

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        total = sum(pool.map(one, urls))
    return Load(label, total, time.perf_counter() - started, firsts[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100, help="images in the grid (k)")
    parser.add_argument("--distinct", type=int, default=4, help="distinct photos generated")
    parser.add_argument("--side", default="4000x3000", help="photo size WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.side.lower().split("x"))

    started = time.perf_counter()
    photos = [photo_like(width, height, seed) for seed in range(args.distinct)]
    print(
        f"generated {len(photos)} {width}x{height} JPEGs, "
        f"{sum(map(len, photos)) / len(photos) / 1e6:.1f} MB each on average, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    with LocalCloud.start(load_config()) as cloud, tempfile.TemporaryDirectory() as tmp:
        assert cloud.event_source is not None
        cloud.event_source.disable()  # the grid needs the objects, not their vectors
        s3, bucket = cloud.client("s3"), cloud.resources.source_bucket
        keys = [f"bench/{i:03d}.jpg" for i in range(args.images)]

        def put(i: int) -> str:
            body = photos[i % len(photos)]
            return str(s3.put_object(Bucket=bucket, Key=keys[i], Body=body)["ETag"]).strip('"')

        with ThreadPoolExecutor(max_workers=4) as pool:
            etags = list(pool.map(put, range(len(keys))))
        with cloud.environ():
            argv = ["serve", "--endpoint-url", cloud.endpoint, "--thumb-cache", str(Path(tmp))]
            web = web_context(Context(build_parser().parse_args(argv)))
        sock = _listen()
        port = sock.getsockname()[1]
        app = create_app(web, Access(port=port))
        server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        originals = [web.presign(bucket, key) for key in keys]
        thumbs = [  # as the search answer's "thumbnail" names them: with the ETag
            f"{base}/thumb?{urlencode({'bucket': bucket, 'key': key, 'etag': etag})}"
            for key, etag in zip(keys, etags, strict=True)
        ]
        try:
            with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=CONNECTIONS)) as c:
                rows = [
                    load_grid(c, originals, "before: originals"),
                    load_grid(c, thumbs, "after: thumbnails, cold cache"),
                    load_grid(c, thumbs, "after: thumbnails, warm cache"),
                ]
            cache_bytes = sum(p.stat().st_size for p in Path(tmp).glob("*.thumb"))
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
    print(f"\na k={args.images} grid, {CONNECTIONS} connections, local cloud on 127.0.0.1")
    print(f"{'load':<28} {'transferred':>13} {'grid':>10} {'first image':>11}")
    for row in rows:
        print(row.line())
    before, cold = rows[0], rows[1]
    print(
        f"\nthumbnails: {before.bytes / max(1, cold.bytes):.0f}x fewer bytes than the "
        f"originals; the disk cache holds {cache_bytes / 1e6:.2f} MB for the grid"
    )


def _listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


if __name__ == "__main__":
    main()
