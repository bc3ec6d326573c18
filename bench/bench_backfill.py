"""Backfill benchmark: parse speed, memory as the inventory grows, send throughput.

    python -m bench.bench_backfill [--rows 1000000] [--latency-ms 20] [--messages 20000]

Prints (targets from the issue in brackets; nothing is asserted):

1. rows/s parsing a CSV.gz inventory of ``--rows`` rows (reader only, then reader +
   the pipeline's key filter) [>= 300k rows/s parsed];
2. peak RSS of a ``--dry-run`` backfill process over 100k and over ``--rows`` rows,
   each in a fresh process [growth < 20 MB: rows are streamed, never collected];
3. messages/s sent to a local SQS (fauxqs, as the local cloud runs it) with an
   injected per-call latency standing in for the network round trip (a botocore
   ``before-send`` hook that sleeps), for the backfill (its own CLI, in-process) and
   for a one-batch-at-a-time sender on the same endpoint [>= 10x].
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
import boto3.session

from imgsearch.config import load_config
from imgsearch.messages import for_backfill, to_send_entry
from imgsearch.selection import KeySelection
from localcloud.services.sqs import start_sqs
from scripts.backfill.filters import RowFilter
from scripts.backfill.rows import CsvGzRows

REPO = Path(__file__).resolve().parents[1]
SOURCE = "bench-photos"
COLUMNS = ("Bucket", "Key", "Size", "LastModifiedDate", "ETag", "StorageClass")


# --------------------------------------------------------------------------- inventories


def sample_key(i: int) -> str:
    """A plausible key mix: 90% images; 10% of keys with spaces, 3% non-ASCII."""
    folder = f"photos/{2015 + i % 10}/{i % 12 + 1:02d}"
    if i % 10 == 9:
        return f"{folder}/meta/IMG_{i:08d}.json"
    if i % 33 == 1:
        return f"{folder}/Été à Montréal/IMG_{i:08d}.jpg"
    if i % 10 == 2:
        return f"{folder}/Beach day/IMG {i:08d}.JPG"
    return f"{folder}/IMG_{i:08d}.jpg"


def write_inventory(root: Path, rows: int) -> Path:
    """A one-file CSV.gz report of ``rows`` objects, keys encoded as S3 writes them."""
    base = root / f"inv-{rows}" / SOURCE / "cfg"
    data_key = f"inv-{rows}/{SOURCE}/cfg/data/part-0.csv.gz"
    data_path = root / data_key
    data_path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    with (
        data_path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as gz,
    ):
        text = io.TextIOWrapper(gz, encoding="utf-8", newline="")
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for i in range(rows):
            key = quote_plus(sample_key(i), safe="/")  # S3's CSV encoding
            etag = f"{i:032x}"
            writer.writerow(
                [SOURCE, key, 1000 + i % 5000, "2024-03-01T00:00:00.000Z", etag, "STANDARD"]
            )
        text.flush()
        text.detach()
    digest.update(data_path.read_bytes())
    manifest = {
        "sourceBucket": SOURCE,
        "destinationBucket": "arn:aws:s3:::bench-inventory",
        "version": "2016-11-30",
        "creationTimestamp": "0",
        "fileFormat": "CSV",
        "fileSchema": ", ".join(COLUMNS),
        "files": [
            {"key": data_key, "size": data_path.stat().st_size, "MD5checksum": digest.hexdigest()}
        ],
    }
    folder = base / "2024-05-01T01-00Z"
    folder.mkdir(parents=True, exist_ok=True)
    raw_manifest = json.dumps(manifest).encode()
    (folder / "manifest.json").write_bytes(raw_manifest)
    (folder / "manifest.checksum").write_text(hashlib.md5(raw_manifest).hexdigest())
    return folder / "manifest.json"


def data_file(manifest: Path) -> Path:
    key = str(json.loads(manifest.read_text())["files"][0]["key"])
    return manifest.parents[4] / key


# --------------------------------------------------------------------------- 1. parsing


def bench_parse(manifest: Path, rows: int) -> dict[str, float]:
    path = data_file(manifest)
    reader = CsvGzRows(path, COLUMNS, path.name)
    start = time.perf_counter()
    n = sum(1 for _ in reader.rows(0))
    parse_s = time.perf_counter() - start
    reader.close()
    assert n == rows, (n, rows)
    row_filter = RowFilter(KeySelection.from_config(load_config()))
    reader = CsvGzRows(path, COLUMNS, path.name)
    start = time.perf_counter()
    selected = sum(1 for r in reader.rows(0) if row_filter.reason(r) is None)
    filter_s = time.perf_counter() - start
    reader.close()
    return {
        "rows": rows,
        "parse_rows_per_s": rows / parse_s,
        "parse_and_filter_rows_per_s": rows / filter_s,
        "selected": selected,
    }


# --------------------------------------------------------------------------- 2. memory


def dry_run_peak_rss(manifest: Path) -> tuple[float, float, dict[str, Any]]:
    """Peak RSS (MB) and wall time of ``imgsearch-backfill --dry-run`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    cmd = [sys.executable, "-m", "scripts.backfill.cli", str(manifest), "--dry-run", "--no-stack"]
    cmd += ["--progress", "none", "--bucket", SOURCE]
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(err.read().decode())
    return usage.ru_maxrss / 1024, wall, json.loads(out)  # Linux reports KiB


# --------------------------------------------------------------------------- 3. sending


@contextlib.contextmanager
def injected_latency(seconds: float) -> Iterator[None]:
    """Every SendMessageBatch waits ``seconds`` before it goes out, in every boto3
    session created meanwhile (the backfill creates its own)."""

    def delay(**_: Any) -> None:
        time.sleep(seconds)

    original = boto3.session.Session.__init__

    def init(self: boto3.session.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.events.register("before-send.sqs.SendMessageBatch", delay)

    setattr(boto3.session.Session, "__init__", init)  # noqa: B010 - a test/bench hook
    try:
        yield
    finally:
        setattr(boto3.session.Session, "__init__", original)  # noqa: B010


def _new_queue(sqs: Any, name: str) -> str:
    return str(
        sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    )


def one_at_a_time(endpoint: str, messages: int, latency: float) -> float:
    """The naive sender: build a batch of 10, send it, wait for the answer, repeat."""
    cfg = load_config()
    with injected_latency(latency):
        sqs = boto3.session.Session(region_name="us-east-1").client("sqs", endpoint_url=endpoint)
        url = _new_queue(sqs, f"seq-{time.time_ns()}")
        start = time.perf_counter()
        for b in range(0, messages, 10):
            entries = [
                to_send_entry(
                    for_backfill(SOURCE, f"seq/{i}.jpg", size=1, etag=f"{i:032x}"),
                    cfg.message_groups,
                    str(i - b),
                )
                for i in range(b, min(b + 10, messages))
            ]
            response = sqs.send_message_batch(QueueUrl=url, Entries=entries)
            assert not response.get("Failed"), response["Failed"]
        return messages / (time.perf_counter() - start)


def backfill_send(
    endpoint: str, manifest: Path, latency: float, concurrency: int, workdir: Path
) -> dict[str, Any]:
    """The real backfill CLI, in-process, sending a whole inventory to a fresh queue."""
    from scripts.backfill.cli import main

    with injected_latency(latency):
        sqs = boto3.session.Session(region_name="us-east-1").client("sqs", endpoint_url=endpoint)
        url = _new_queue(sqs, f"bf-{time.time_ns()}")
        out = io.StringIO()
        argv = [str(manifest), "--no-stack", "--progress", "none", "--bucket", SOURCE]
        argv += ["--queue-url", url, "--endpoint-url", endpoint]
        argv += ["--concurrency", str(concurrency)]
        argv += ["--checkpoint", str(workdir / f"cp-{time.time_ns()}.json")]
        with contextlib.redirect_stdout(out):
            code = main(argv)
        if code != 0:
            raise RuntimeError(f"backfill exited {code}: {out.getvalue()}")
        summary: dict[str, Any] = json.loads(out.getvalue())
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        summary["in_queue"] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
        return summary


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="rows of the large inventory")
    p.add_argument("--small-rows", type=int, default=100_000, help="rows of the small inventory")
    p.add_argument("--latency-ms", type=float, default=20.0, help="injected per-call latency")
    p.add_argument("--messages", type=int, default=20_000, help="messages for the send benchmark")
    p.add_argument("--concurrency", type=int, default=32, help="backfill --concurrency")
    p.add_argument("--skip-send", action="store_true", help="no fauxqs part")
    args = p.parse_args()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        small = write_inventory(root, args.small_rows)
        large = write_inventory(root, args.rows)
        print(
            f"# inventories written in {time.perf_counter() - t:.1f} s "
            f"({data_file(large).stat().st_size / 1e6:.1f} MB gzip for {args.rows:,} rows)"
        )

        parse = bench_parse(large, args.rows)
        print("\n## 1. parsing a CSV.gz inventory (target >= 300,000 rows/s)")
        print(f"rows parsed per second:              {parse['parse_rows_per_s']:>12,.0f}")
        print(
            f"rows parsed + filtered per second:   {parse['parse_and_filter_rows_per_s']:>12,.0f}"
        )

        print("\n## 2. peak memory of a --dry-run backfill process (target: growth < 20 MB)")
        rss_small, wall_small, s_small = dry_run_peak_rss(small)
        rss_large, wall_large, s_large = dry_run_peak_rss(large)
        print(
            f"{args.small_rows:>9,} rows: peak RSS {rss_small:7.1f} MB, {wall_small:5.1f} s, "
            f"selected {s_small['selected']:,}"
        )
        print(
            f"{args.rows:>9,} rows: peak RSS {rss_large:7.1f} MB, {wall_large:5.1f} s, "
            f"selected {s_large['selected']:,}"
        )
        print(
            f"growth: {rss_large - rss_small:+.1f} MB for {args.rows / args.small_rows:.0f}x "
            f"the rows; end-to-end dry run {args.rows / wall_large:,.0f} rows/s incl. start-up"
        )

        if args.skip_send:
            return
        latency = args.latency_ms / 1000
        print(
            f"\n## 3. sending to a local SQS (fauxqs) with {args.latency_ms:g} ms injected per "
            "call (target >= 10x one-at-a-time)"
        )
        send_inv = write_inventory(root, args.messages)
        with start_sqs() as server:
            seq_messages = max(1000, args.messages // 10)
            seq_rate = one_at_a_time(server.endpoint, seq_messages, latency)
            summary = backfill_send(server.endpoint, send_inv, latency, args.concurrency, root)
        expected = summary["selected"]
        label = f"backfill --concurrency {args.concurrency}:"
        print(f"{'one batch at a time:':<30}{seq_rate:>10,.0f} msg/s ({seq_messages:,} messages)")
        print(
            f"{label:<30}{summary['messages_per_second']:>10,.0f} msg/s ({summary['sent']:,} sent, "
            f"{summary['in_queue']:,} in queue of {expected:,} selected, "
            f"{summary['throttled_calls']} throttled calls)"
        )
        print(f"speed-up: {summary['messages_per_second'] / seq_rate:.1f}x")


if __name__ == "__main__":
    main()
