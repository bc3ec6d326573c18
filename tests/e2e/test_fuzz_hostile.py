"""Hostile message bodies on the local cloud: none crashes a worker or hurts its neighbours.

A few hundred bodies that Hypothesis generates (random bytes, near SQS's size limit,
nested 100,000 deep, wrong types, missing and extra fields, Unicode edge cases, keys over
S3's 1,024 bytes, invalid bucket names) go straight to the FIFO queue, in the message
groups of valid messages for real uploaded images, through the production embedder at
``batch_size`` 1 and 10. Each message must end with exactly one outcome line: the valid
ones ``embedded``, the hostile ones ``permanent_failure`` / ``invalid_message``; no
invocation fails, and no message is handed back (a group waits for a visibility timeout
only when one of its messages is, so none waited).

The bodies are generated once per run with a fixed seed (``derandomize``), no shrinking
and no example database, so CI is repeatable and short. The tools that read bodies back
(``imgsearch dlq list``, ``LocalCloud.accounting()``) are checked on the same kind of input.
"""

from __future__ import annotations

import functools
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from imgsearch.config import load_config
from imgsearch.limits import LIMITS
from imgsearch.messages import (
    KEY_MAX_BYTES,
    MessageError,
    for_backfill,
    parse_message,
    to_send_entry,
    vector_key,
)
from localcloud.cloud import LocalCloud
from localcloud.samples import synthetic_images
from scripts.common.errors import EXIT_INCOMPLETE
from scripts.ops.dlq import queue_depth
from tests.e2e.cli_harness import run_cli
from tests.e2e.conftest import E2E_CONFIG, assert_accounted, upload

pytestmark = pytest.mark.e2e

HOSTILE_PER_RUN = 200
VALID_PER_RUN = 16
BODY_MAX_BYTES = LIMITS.sqs_message_max_bytes
NESTED = "[" * 100_000 + "]" * 100_000
"""Issue 15's body: deeper than Python's recursion limit."""

# --------------------------------------------------------------------------- bodies

# SQS accepts #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF
# (SendMessage API reference, MessageBody). fauxqs refuses the last range (README,
# local-cloud differences), so generated text stays at or below U+FFFD.
_DISALLOWED = {chr(c) for c in range(0x20) if c not in (0x9, 0xA, 0xD)}
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff\U00010000-\U0010ffff]")


def sqs_text(text: str) -> str:
    """``text`` with every character SQS or fauxqs would refuse dropped (never empty)."""
    return _REFUSED.sub("", text) or "\ufffd"


SQS_CHARS = st.characters(
    min_codepoint=0x9, max_codepoint=0xFFFD, exclude_categories=["Cs"]
).filter(lambda c: c not in _DISALLOWED)


def _valid(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(
        for_backfill("photos-bucket", "photos/a.jpg", size=10, etag="e1").to_json()
    )
    body.update(changes)
    return body


def _fit(unit: str, tail: str, depth: int) -> str:
    depth = min(depth, (BODY_MAX_BYTES - 16) // (len(unit) + len(tail)))
    return unit * depth + "1" + tail * depth


random_bytes = st.binary(min_size=1, max_size=2048).map(
    lambda b: sqs_text(b.decode("utf-8", "replace"))
)
random_latin1 = st.binary(min_size=1, max_size=2048).map(lambda b: sqs_text(b.decode("latin-1")))
random_text = st.text(SQS_CHARS, min_size=1, max_size=500)
nested = st.one_of(
    st.just(NESTED),
    st.builds(
        _fit,
        st.sampled_from(['{"a":', '[{"v":', '{"v":1,"key":']),
        st.just("}"),
        st.integers(1_000, 60_000),
    ),
    st.builds(_fit, st.just("["), st.just("]"), st.integers(900, 130_000)),
)
huge = st.one_of(
    # a key far over S3's limit: S3 would answer 414, the schema refuses it
    st.integers(KEY_MAX_BYTES + 1, BODY_MAX_BYTES - 400).map(
        lambda n: json.dumps(_valid(key="k" * n))
    ),
    st.integers(10_000, BODY_MAX_BYTES - 400).map(lambda n: json.dumps(_valid(extra="x" * n))),
    st.integers(10_000, BODY_MAX_BYTES - 400).map(lambda n: json.dumps(_valid(kind="u" * n))),
    st.integers(10_000, BODY_MAX_BYTES - 10).map(lambda n: " " * n + "{"),
)


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(SQS_CHARS), inner, max_size=4)


any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(SQS_CHARS),
    _containers,
    max_leaves=8,
)
FIELDS = ("v", "bucket", "key", "kind", "origin", "event_time", "size", "etag", "version_id")
wrong_types = st.builds(
    lambda name, value: json.dumps(_valid(**{name: value})),
    st.sampled_from(FIELDS),
    any_json | st.sampled_from([True, False, 1.0, "1", 0, 2, -1, 1e308, [], {}, ""]),
)
missing_fields = st.sets(
    st.sampled_from(["v", "bucket", "key", "kind", "origin", "event_time"]), min_size=1
).map(lambda names: json.dumps({k: v for k, v in _valid().items() if k not in names}))
extra_fields = st.builds(
    lambda name, value: json.dumps({**_valid(), name: value}),
    st.text(SQS_CHARS, min_size=1, max_size=40).filter(lambda n: n not in FIELDS),
    any_json,
)
bad_buckets = st.one_of(
    st.sampled_from(
        [
            "ab",
            "a" * 64,
            "Photos",
            "under_score",
            "192.168.1.1",
            "xn--bucket",
            "sthree-bucket",
            "bucket-s3alias",
            "bucket--ol-s3",
            "a..b",
            "-abc",
            "abc-",
            "éé",
            "bucket\u200b",
            "\uff42\uff55\uff43\uff4b\uff45\uff54",  # fullwidth "bucket"
            "bucket/key",
            " bucket",
        ]
    ),
    st.text(SQS_CHARS, min_size=1, max_size=70),
).map(lambda bucket: json.dumps(_valid(bucket=bucket)))
unicode_edges = st.one_of(
    # a lone surrogate, legal as a JSON escape, is no Unicode text: S3 cannot hold it
    st.sampled_from(["\ud800", "a\udfff.jpg", "\udbff\udc00\ud800"]).map(
        lambda key: json.dumps(_valid(key=key))
    ),
    # S3's limit is in UTF-8 bytes: over 1,024 bytes in far fewer characters
    st.sampled_from(["é", "日", "\ufffd", "\u0301"]).map(
        lambda c: json.dumps(_valid(key=c * (KEY_MAX_BYTES // len(c.encode()) + 1)))
    ),
    st.sampled_from(["upsert\u200d", "ups\u0435rt", "UPSERT", "upsert\t", "\u202eupsert"]).map(
        lambda kind: json.dumps(_valid(kind=kind), ensure_ascii=False)
    ),
    st.just("\ufeff" + json.dumps(_valid())),  # a byte-order mark before the JSON
    st.just(json.dumps(_valid()) + "\u0085\u2028"),  # trailing text after the object
    st.just(json.dumps(_valid())[:-1]),  # cut short
    st.just(json.dumps(_valid(), ensure_ascii=False).replace('"v"', '"\\u0076\\u0000"')),
)
over_limit_keys = st.integers(KEY_MAX_BYTES + 1, KEY_MAX_BYTES + 64).map(
    lambda n: json.dumps(_valid(key="k" * n))
) | st.just(json.dumps(_valid(key="")))

HOSTILE = st.one_of(
    random_bytes,
    random_latin1,
    random_text,
    nested,
    huge,
    wrong_types,
    missing_fields,
    extra_fields,
    bad_buckets,
    unicode_edges,
    over_limit_keys,
)


def rejected(body: str) -> bool:
    """True when the schema refuses ``body``; any other exception is a bug and propagates."""
    try:
        parse_message(body)
    except MessageError:
        return True
    return False


@functools.cache
def hostile_bodies(count: int) -> tuple[str, ...]:
    """``count`` distinct hostile bodies, the same on every run (a fixed seed)."""
    found: dict[str, None] = {}

    @settings(
        max_examples=count * 3 // 2,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(HOSTILE.map(sqs_text))
    def collect(body: str) -> None:
        if len(found) < count and len(body.encode()) <= BODY_MAX_BYTES and rejected(body):
            found[body] = None

    collect()
    found.setdefault(NESTED, None)
    return tuple(found)[:count]


# --------------------------------------------------------------------------- the run


def outcome_lines(log_file: Path) -> dict[str, list[dict[str, Any]]]:
    """The embedder's outcome lines in the run's log file, by SQS message id."""
    by_message: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in log_file.read_text(encoding="utf-8").splitlines():
        _, _, line = raw.partition("\t")
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if isinstance(record, dict) and "outcome" in record and "message_id" in record:
            by_message[str(record["message_id"])].append(record)
    return by_message


def long_key(limit: int = KEY_MAX_BYTES) -> str:
    """A key of exactly ``limit`` UTF-8 bytes, mostly two-byte characters."""
    head, tail = "photos/", ".jpg"
    room = limit - len(head) - len(tail)
    return head + "é" * (room // 2) + "k" * (room % 2) + tail


def valid_keys(count: int) -> list[str]:
    special = [long_key(), "photos/日本語 ü+%20&=?.jpg", "photos/a b/c'd\"e.jpg"]
    return special + [f"photos/fuzz-{i:03d}.jpg" for i in range(count - len(special))]


@pytest.mark.parametrize("batch_size", [1, 10])
def test_hostile_bodies_end_as_one_permanent_failure_each_and_hurt_no_neighbour(
    make_cloud: Callable[..., LocalCloud], tmp_path: Path, batch_size: int
) -> None:
    # Few groups, so hostile and valid messages share them; a timeout that a loaded CI
    # machine does not hit, so any failed invocation below is the bodies' doing.
    cloud = make_cloud(
        batch_size=batch_size,
        message_groups=4,
        embedder_timeout_seconds=10,
        visibility_timeout_seconds=60,
    )
    bucket, cfg = cloud.resources.source_bucket, cloud.cfg
    keys = valid_keys(VALID_PER_RUN)
    for key, image in zip(keys, synthetic_images(len(keys), side=48), strict=True):
        upload(cloud, key, image.data)
    assert_accounted(cloud)
    # Take the router's vectors away, so the messages sent below embed again.
    cloud.client("s3vectors").delete_vectors(
        vectorBucketName=cloud.resources.vector_bucket,
        indexName=cloud.resources.index_name,
        keys=[vector_key(bucket, k) for k in keys],
    )
    s3 = cloud.client("s3")
    valid = []
    for i, key in enumerate(keys):
        head = s3.head_object(Bucket=bucket, Key=key)
        msg = for_backfill(bucket, key, size=head["ContentLength"], etag=head["ETag"])
        valid.append(to_send_entry(msg, cfg.message_groups, str(i)))
    groups = sorted({e["MessageGroupId"] for e in valid})
    rng = random.Random(15)
    hostile = [
        {
            "MessageBody": body,
            # The valid messages' groups (neighbours), and some other legal group ids
            "MessageGroupId": rng.choice(groups) if i % 5 else f"hostile-{i}!#$%&()*+,-./:;<=>?@",
            "MessageDeduplicationId": f"hostile-{i}",
        }
        for i, body in enumerate(hostile_bodies(HOSTILE_PER_RUN))
    ]
    entries = [{**e, "kind": "valid"} for e in valid] + [{**e, "kind": "hostile"} for e in hostile]
    rng.shuffle(entries)
    sqs = cloud.client("sqs")
    kinds: dict[str, str] = {}
    runtime = cloud.runtime
    assert runtime is not None and runtime.event_source is not None
    runtime.event_source.disable()  # all queued first: full batches, hostile and valid mixed
    for entry in entries:
        sent = sqs.send_message(
            QueueUrl=cloud.resources.queue_url,
            MessageBody=entry["MessageBody"],
            MessageGroupId=entry["MessageGroupId"],
            MessageDeduplicationId=entry["MessageDeduplicationId"],
        )
        kinds[sent["MessageId"]] = str(entry["kind"])
    before = runtime.event_source.stats_now()
    errors_before = Counter(runtime.embedder.stats)
    runtime.event_source.enable()
    report = assert_accounted(cloud)

    lines = outcome_lines(tmp_path / "lambda.log")
    problems = []
    for message_id, kind in kinds.items():
        seen = [(r["outcome"], r.get("reason")) for r in lines.get(message_id, [])]
        expected = (
            ("embedded", None) if kind == "valid" else ("permanent_failure", "invalid_message")
        )
        if seen != [expected]:
            problems.append(f"{kind} message {message_id}: outcomes {seen}, expected [{expected}]")
    assert not problems, f"{len(problems)} message(s) did not end once as expected:\n" + "\n".join(
        problems[:20]
    )
    assert cloud.vector_keys() == {vector_key(bucket, k) for k in keys}
    assert report.vectors == len(keys) and report.in_dlq == 0 and not report.unreadable_dlq
    # No invocation failed, timed out or handed a message back (so no group waited).
    embedder = Counter(runtime.embedder.stats)
    embedder.subtract(errors_before)
    assert (embedder["errors"], embedder["timeouts"]) == (0, 0), dict(embedder)
    source = Counter(runtime.event_source.stats_now())
    source.subtract(before)
    assert (source["batch_failures"], source["messages_failed"]) == (0, 0), dict(source)
    assert (
        sum(1 for lines_ in lines.values() for r in lines_ if r["outcome"] == "transient_failure")
        == 0
    )
    batches = source["batches"]
    if batch_size > 1:  # the hostile bodies really shared batches with valid messages
        assert batches <= len(kinds) // 2, (batches, len(kinds))


# --------------------------------------------------------------------------- reading back


@pytest.fixture
def services() -> Iterator[LocalCloud]:
    """The local cloud without its Lambda runtime: what is put in a queue stays there."""
    with LocalCloud.start(load_config(overrides=E2E_CONFIG), runtime=False) as cloud:
        yield cloud


def test_dlq_list_and_accounting_read_any_body(
    services: LocalCloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = services
    bodies = {
        "nested": NESTED,
        "binary": sqs_text(bytes(range(256)).decode("latin-1")),
        "wrong-types": '{"v":true,"bucket":7,"key":["a"],"kind":null}',
        "records": '{"Records":[{"s3":{"bucket":{"name":7},"object":{"key":[1]}}}]}',
        "huge": json.dumps(_valid(key="k" * 200_000)),
    }
    sqs = cloud.client("sqs")
    for url in (cloud.resources.dlq_url, cloud.resources.router_dlq_url):
        for name, body in bodies.items():
            if url.endswith(".fifo"):
                sqs.send_message(
                    QueueUrl=url, MessageBody=body, MessageGroupId=name, MessageDeduplicationId=name
                )
            else:
                sqs.send_message(QueueUrl=url, MessageBody=body)

    report = cloud.accounting()
    assert report.ok and report.in_dlq == 0
    assert len(report.unreadable_dlq) == 2 * len(bodies)
    assert sum("unparseable (RecursionError)" in u for u in report.unreadable_dlq) == 2
    assert "unreadable_dlq=10" in report.summary()

    run = run_cli(cloud, capsys, "dlq", "list")
    assert run.code == 0, run.err
    assert "why            not a pipeline message: unparseable (RecursionError)" in run.out
    assert "(200000 characters)" in run.out and len(run.out) < 20_000
    run = run_cli(cloud, capsys, "dlq", "list", "--output", "json")
    assert run.code == 0, run.err
    listing = json.loads(run.out)
    errors = Counter(m["body_error"].split(" ")[0] for m in listing["messages"])
    assert listing["listed"] == len(bodies) and errors["unparseable"] == 2
    assert cloud.snapshot().dlq == len(bodies)  # listing moved nothing

    # The router's DLQ holds the same bodies, read as S3 events.
    run = run_cli(cloud, capsys, "dlq", "list", "--router")
    assert run.code == 0, run.err
    assert f"{len(bodies)} event(s) in" in run.out
    assert "why            not an S3 event: not JSON (RecursionError)" in run.out
    assert "(200000 characters)" in run.out and len(run.out) < 20_000
    run = run_cli(cloud, capsys, "dlq", "list", "--router", "--output", "json")
    assert run.code == 0, run.err
    listing = json.loads(run.out)
    assert listing["listed"] == len(bodies)
    [records] = [m for m in listing["messages"] if m["body_error"] is None]
    assert records["objects"] == [] and records["skipped"][0].startswith("not_object_event: ")
    router_dlq = cloud.resources.router_dlq_url
    assert queue_depth(sqs, router_dlq) == len(bodies)  # listing moved nothing
    # A redrive sends what it can read and leaves the rest, one error line each.
    run = run_cli(cloud, capsys, "dlq", "redrive", "--router")
    assert run.code == EXIT_INCOMPLETE, run.err
    assert f"re-enqueued the objects of 1 of {len(bodies)} event(s)" in run.out
    left = [line for line in run.err_lines if "left in the DLQ" in line]
    assert len(left) == len(bodies) - 1 and "Traceback" not in run.err
    assert all(
        line.startswith("imgsearch: error: message ") and len(line) < 300 for line in left
    ), left
    assert queue_depth(sqs, router_dlq) == len(bodies) - 1  # only the readable event went

    # The local difference the README names: SQS accepts U+10000..U+10FFFF, fauxqs does not;
    # the pipeline's own bodies are ASCII, so it never sends one.
    with pytest.raises(ClientError) as refused:
        sqs.send_message(
            QueueUrl=cloud.resources.dlq_url,
            MessageBody="\U0001f600",
            MessageGroupId="g",
            MessageDeduplicationId="emoji",
        )
    assert refused.value.response["Error"]["Code"].endswith("InvalidMessageContents")
    msg = for_backfill("photos-bucket", "photos/\U0001f600 party.jpg", size=1, etag="e")
    assert msg.to_json().isascii() and parse_message(msg.to_json()) == msg


@pytest.mark.parametrize("version", [True, 1.0, "1", 2, 0, None, [1]])
def test_the_schema_version_is_the_integer_1_only(version: Any) -> None:
    # True == 1 and 1.0 == 1 in Python; neither is schema version 1.
    with pytest.raises(MessageError, match="field 'v'"):
        parse_message(json.dumps(_valid(v=version)))
