"""Resume after kill -9 and after Ctrl-C: every object enqueued, exactly once, no gaps.

The backfill runs as a real process against a moto server; it is stopped mid-file
right after SQS accepted a batch the script never saw acknowledged (see
``backfill_crash_runner``). Then the same command runs again.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from imgsearch.messages import parse_message
from tests.unit import backfill_support as bs

REPO = Path(__file__).resolve().parents[2]
OBJECTS = bs.images(100, "first/") + bs.images(60, "second/")
FILE_ROWS = 80  # two data files of 80 rows: the stop lands inside the first
CONCURRENCY = 3  # in flight: at most 2 x 3 batches of 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def moto_server() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def world(moto_server: str, tmp_path: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=bs.REGION,
        AWS_ENDPOINT_URL=moto_server,
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONPATH=str(REPO),
    )
    kw = {"region_name": bs.REGION, "endpoint_url": moto_server}
    kw |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    s3 = boto3.client("s3", **kw)
    sqs = boto3.client("sqs", **kw)
    s3.create_bucket(Bucket=bs.SOURCE)
    s3.create_bucket(Bucket=bs.INVENTORY)
    url = sqs.create_queue(QueueName=bs.QUEUE, Attributes={"FifoQueue": "true"})["QueueUrl"]
    manifest = bs.report(OBJECTS, parts=len(OBJECTS) // FILE_ROWS).put_to(s3, bs.INVENTORY)
    return {"env": env, "sqs": sqs, "url": url, "manifest": manifest, "cwd": tmp_path}


def _backfill(
    world: dict[str, Any], stop_after: int, how: str, *extra: str
) -> tuple[int, dict[str, Any]]:
    args = [world["manifest"], *bs.CLI_BASE, "--concurrency", str(CONCURRENCY), *extra]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.unit.backfill_crash_runner",
            str(stop_after),
            how,
            "--",
            *args,
        ],
        env=world["env"],
        cwd=world["cwd"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout) if proc.stdout.strip() else {}
    world["stderr"] = proc.stderr
    return proc.returncode, summary


def _in_queue(world: dict[str, Any]) -> int:
    attrs = world["sqs"].get_queue_attributes(
        QueueUrl=world["url"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def _checkpoint(world: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (world["cwd"] / "imgsearch-backfill.checkpoint.json").read_text()
    )
    return data


def _acknowledged_rows(cp: dict[str, Any]) -> int:
    return sum(p["rows"] for p in cp["inputs"].values())


def _assert_each_object_once(world: dict[str, Any]) -> None:
    keys = [parse_message(m["Body"]).key for m in bs.drain(world["sqs"], world["url"])]
    assert sorted(keys) == sorted(o.key for o in OBJECTS)  # every object, no duplicates


def test_resume_after_kill_9_mid_file(world: dict[str, Any]) -> None:
    code, summary = _backfill(world, stop_after=3, how="kill")
    assert code == -9 and summary == {}  # killed: no summary, no cleanup ran
    cp = _checkpoint(world)
    acknowledged = _acknowledged_rows(cp)
    accepted = _in_queue(world)
    assert not cp["complete"]
    started = [p for p in cp["inputs"].values() if p["rows"]]
    assert len(started) == 1 and not started[0]["done"]
    assert 0 < acknowledged < FILE_ROWS  # stopped inside the first data file
    # SQS holds everything acknowledged, plus at most the batches that were in flight
    assert acknowledged <= accepted <= acknowledged + 2 * CONCURRENCY * 10

    code, summary = _backfill(world, stop_after=0, how="never")
    assert code == 0, summary
    assert summary["status"] == "complete" and summary["resumed"] is True
    # the second run starts exactly at the watermark: nothing skipped, nothing before it resent
    assert summary["rows_read"] == len(OBJECTS) - acknowledged
    assert summary["sent"] == len(OBJECTS) - acknowledged
    _assert_each_object_once(world)  # duplicates of in-flight batches collapsed by dedup id


def test_resume_after_ctrl_c_resends_nothing(world: dict[str, Any]) -> None:
    code, summary = _backfill(world, stop_after=3, how="int")
    assert code == 130
    assert summary["status"] == "interrupted" and summary["stopped_by"] == "SIGINT"
    cp = _checkpoint(world)
    # a graceful stop waits for the batches in flight: checkpoint == what SQS holds
    assert _acknowledged_rows(cp) == _in_queue(world) == summary["sent"]
    assert 0 < summary["sent"] < len(OBJECTS)

    code, second = _backfill(world, stop_after=0, how="never")
    assert code == 0 and second["status"] == "complete"
    assert summary["sent"] + second["sent"] == len(OBJECTS)
    _assert_each_object_once(world)


def test_second_ctrl_c_quits_at_once_and_still_resumes_cleanly(world: dict[str, Any]) -> None:
    code, summary = _backfill(world, stop_after=3, how="int2")
    assert code == 130  # quit without waiting, but the summary still says how far it got
    assert summary["status"] == "interrupted" and summary["stopped_by"] == "SIGINT"
    cp = _checkpoint(world)
    acknowledged = _acknowledged_rows(cp)
    assert 0 < acknowledged <= _in_queue(world) <= acknowledged + 2 * CONCURRENCY * 10

    code, second = _backfill(world, stop_after=0, how="never")
    assert code == 0 and second["sent"] == len(OBJECTS) - acknowledged
    _assert_each_object_once(world)


def test_a_ctrl_c_after_the_summary_keeps_exit_status_130(world: dict[str, Any]) -> None:
    code, summary = _backfill(world, stop_after=3, how="late")
    assert code == 130 and summary["status"] == "interrupted"  # not -2 (killed by SIGINT)


def test_the_last_progress_line_after_ctrl_c_shows_how_far_it_read(world: dict[str, Any]) -> None:
    # one batch at a time: the stop lands inside the first data file
    progress = ("--progress", "log", "--log-interval", "60", "--concurrency", "1")
    code, summary = _backfill(world, 3, "int", *progress)
    assert code == 130 and summary["inputs"]["done"] == 0
    last = [line for line in world["stderr"].splitlines() if line.startswith("backfill: ")][-1]
    percent = float(last.split("%")[0].removeprefix("backfill: "))
    assert 0.0 < percent < 100.0, last  # not "0.0%": the first data file was read
