"""``imgsearch search`` and ``get`` on the local cloud, including every kind of bad input."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from imgsearch.images import ImageInfo
from imgsearch.limits import LIMITS
from imgsearch.messages import vector_key
from imgsearch.vectors import NON_FILTERABLE_KEYS, VectorIndex, VectorRecord, build_metadata
from localcloud.cloud import LocalCloud
from tests.e2e.cli_harness import (
    CliRun,
    library,
    photo_jpeg,
    run_cli,
    run_process,
    seeded_cloud,
)
from tests.e2e.conftest import assert_accounted

pytestmark = pytest.mark.e2e
__all__ = ["seeded_cloud"]  # the module-scoped fixture, re-exported for pytest

Capsys = pytest.CaptureFixture[str]


def _json(out: str) -> dict[str, object]:
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_image_search_finds_the_photo_and_its_copy(
    seeded_cloud: LocalCloud, capsys: Capsys, tmp_path: Path
) -> None:
    query = tmp_path / "query.jpg"
    query.write_bytes(library(seeded_cloud)["photos/rocket.jpg"])
    run = run_cli(seeded_cloud, capsys, "search", "--image", str(query), "--k", "3")
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].split() == ["RANK", "DISTANCE", "SOURCE", "SIZE", "WxH"]
    bucket = seeded_cloud.resources.source_bucket
    assert f"s3://{bucket}/photos/rocket.jpg" in lines[1]
    assert f"s3://{bucket}/photos/rocket-small.jpg" in lines[2]
    assert "160x" in lines[1] and "80x" in lines[2]  # WxH from the metadata
    assert len(lines) == 4

    as_json = _json(
        run_cli(
            seeded_cloud, capsys, "search", "--image", str(query), "--k", "3", "--output", "json"
        ).out
    )
    results = as_json["results"]
    assert isinstance(results, list)
    assert [r["rank"] for r in results] == [1, 2, 3]
    distances = [r["distance"] for r in results]
    assert distances == sorted(distances) and distances[0] < 0.01
    assert results[0]["key"] == "photos/rocket.jpg"
    assert results[0]["vector_key"] == vector_key(bucket, "photos/rocket.jpg")
    assert as_json["query"]["image_format"] == "jpeg"  # type: ignore[index]


def test_image_search_by_s3_uri_and_text_search_by_colour(
    seeded_cloud: LocalCloud, capsys: Capsys
) -> None:
    bucket = seeded_cloud.resources.source_bucket
    run = run_cli(
        seeded_cloud,
        capsys,
        "search",
        "--image",
        f"s3://{bucket}/photos/coffee-small.jpg",
        "--output",
        "json",
    )
    assert run.code == 0, run.err
    keys = [r["key"] for r in _json(run.out)["results"]]  # type: ignore[union-attr]
    assert keys[:2] == ["photos/coffee-small.jpg", "photos/coffee.jpg"]

    run = run_cli(seeded_cloud, capsys, "search", "--text", "red", "--k", "2", "--output", "json")
    assert run.code == 0, run.err
    data = _json(run.out)
    assert {r["key"] for r in data["results"]} == {"colours/red.jpg", "colours/red-wide.png"}  # type: ignore[union-attr]
    assert data["query"]["purpose"] == "IMAGE_RETRIEVAL"  # type: ignore[index]


def test_where_and_filter_narrow_the_results(seeded_cloud: LocalCloud, capsys: Capsys) -> None:
    def keys(*argv: str) -> list[str]:
        run = run_cli(seeded_cloud, capsys, "search", "--output", "json", "--k", "20", *argv)
        assert run.code == 0, run.err
        return [r["key"] for r in _json(run.out)["results"]]  # type: ignore[union-attr]

    everything = keys("--text", "red")
    assert len(everything) == len(library(seeded_cloud))
    colours = keys("--text", "red", "--where", "prefix=colours")
    assert sorted(colours) == sorted(k for k in everything if k.startswith("colours/"))
    assert keys("--text", "red", "--where", "format=png") == ["colours/red-wide.png"]
    wide = keys("--text", "red", "--where", "width>=150", "--where", "prefix=photos/")
    assert sorted(wide) == ["photos/astronaut.jpg", "photos/coffee.jpg", "photos/rocket.jpg"]
    either = keys("--text", "red", "--filter", '{"$or": [{"format": "png"}, {"width": 80}]}')
    assert sorted(either) == [
        "colours/red-wide.png",
        "photos/astronaut-small.jpg",
        "photos/coffee-small.jpg",
        "photos/rocket-small.jpg",
    ]
    # A filter matching nothing: an empty answer, not an error.
    run = run_cli(seeded_cloud, capsys, "search", "--text", "red", "--where", "prefix=none/")
    assert run.code == 0 and run.out == "" and "no results match" in run.err


def test_get_shows_metadata_without_embedding(seeded_cloud: LocalCloud, capsys: Capsys) -> None:
    bucket = seeded_cloud.resources.source_bucket
    calls = dict(seeded_cloud.front.requests).get("bedrock:InvokeModel", 0)
    run = run_cli(
        seeded_cloud, capsys, "get", f"s3://{bucket}/colours/blue.jpg", "--output", "json"
    )
    assert run.code == 0, run.err
    data = _json(run.out)
    assert data["key"] == vector_key(bucket, "colours/blue.jpg")
    metadata = data["metadata"]
    assert isinstance(metadata, dict)
    assert (metadata["width"], metadata["height"], metadata["format"]) == (96, 64, "jpeg")
    assert metadata["s3_uri"] == f"s3://{bucket}/colours/blue.jpg"
    assert seeded_cloud.front.requests.get("bedrock:InvokeModel", 0) == calls

    table = run_cli(seeded_cloud, capsys, "get", f"s3://{bucket}/colours/blue.jpg", "--with-data")
    assert table.code == 0
    assert re.search(r"^source_key +colours/blue\.jpg$", table.out, re.MULTILINE), table.out
    assert f"({seeded_cloud.cfg.dimension} dimensions)" in table.out

    missing = run_cli(seeded_cloud, capsys, "get", f"s3://{bucket}/colours/nothing.jpg")
    assert missing.code == 1
    line = missing.one_line_error("no vector for", "colours/nothing.jpg", "imgsearch verify")
    assert "status" not in line and "dlq" not in line  # neither names a recorded failure


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (
            ["--text", "x", "--k", str(LIMITS.query_top_k_max + 1)],
            [f"--k {LIMITS.query_top_k_max + 1}", f"1..{LIMITS.query_top_k_max}"],
        ),
        (["--text", "x", "--k", "0"], ["--k 0"]),
        (["--text", "x", "--filter", "{not json"], ["--filter: not valid JSON"]),
        (["--text", "x", "--filter", '{"colour": "red"}'], ["unknown metadata key 'colour'"]),
        (["--text", "x", "--where", "width>=big"], ["--where 'width>=big'", "number"]),
        (["--text", "x", "--index", "no-such-index"], ["index 'no-such-index' does not exist"]),
        (
            ["--text", "x", "--vector-bucket", "no-such-vectors"],
            ["vector bucket 'no-such-vectors' does not exist"],
        ),
        (["--text", "   "], ["the query is empty"]),
        (["--image", "/definitely/not/here.jpg"], ["no such file"]),
        (["--image", "s3://imgsearch-source/photos/none.jpg"], ["no such object"]),
        (["--image", "s3://no-such-bucket-here/a.jpg"], ["does not exist"]),
        (["--text", "x", "--image", "a.jpg"], ["not allowed with argument"]),
        ([], ["one of the arguments --text --image --like is required"]),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    seeded_cloud: LocalCloud, capsys: Capsys, argv: list[str], fragments: list[str]
) -> None:
    run = run_cli_or_exit(seeded_cloud, capsys, "search", *argv)
    run.one_line_error(*fragments)


def run_cli_or_exit(cloud: LocalCloud, capsys: Capsys, *argv: str) -> CliRun:
    """argparse usage errors exit via SystemExit; catch it like a shell would."""
    try:
        return run_cli(cloud, capsys, *argv)
    except SystemExit as exc:
        captured = capsys.readouterr()
        return CliRun(int(exc.code or 0), captured.out, captured.err)


def test_unsupported_and_broken_query_images(
    seeded_cloud: LocalCloud, capsys: Capsys, tmp_path: Path
) -> None:
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("not an image at all\n")
    run_cli(seeded_cloud, capsys, "search", "--image", str(text_file)).one_line_error(
        "notes.jpg", "not a JPEG, PNG, GIF or WebP"
    )
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(photo_jpeg("coffee")[:500])
    run_cli(seeded_cloud, capsys, "search", "--image", str(cut)).one_line_error("cut.jpg")
    bmp = tmp_path / "image.bmp"
    bmp.write_bytes(b"BM" + bytes(100))
    run_cli(seeded_cloud, capsys, "search", "--image", str(bmp)).one_line_error("image.bmp")
    # A GIF is an image Nova takes, but Marengo does not: the model's formats decide.
    gif = tmp_path / "anim.gif"
    from PIL import Image

    Image.new("RGB", (8, 8), (1, 2, 3)).save(gif, "GIF")
    seeded_cloud.client("s3vectors").create_index(
        vectorBucketName=seeded_cloud.resources.vector_bucket,
        indexName="marengo-gifs",
        dataType="float32",
        dimension=512,
        distanceMetric="cosine",
    )
    run = run_cli(
        seeded_cloud,
        capsys,
        "search",
        "--image",
        str(gif),
        "-c",
        "model_id=twelvelabs.marengo-embed-3-0-v1:0",
        "-c",
        "dimension=512",
        "--index",
        "marengo-gifs",
    )
    run.one_line_error("does not accept gif images")


def test_index_of_another_dimension_and_an_empty_index(
    seeded_cloud: LocalCloud, capsys: Capsys
) -> None:
    vectors = seeded_cloud.client("s3vectors")
    bucket = seeded_cloud.resources.vector_bucket
    for name, dimension in (("marengo-sized", 512), ("empty-wide", 3072)):
        vectors.create_index(
            vectorBucketName=bucket,
            indexName=name,
            dataType="float32",
            dimension=dimension,
            distanceMetric="cosine",
        )
    run = run_cli(seeded_cloud, capsys, "search", "--text", "red", "--index", "marengo-sized")
    run.one_line_error("512-dimension vectors", "cannot produce")
    # 3072 is a Nova dimension: the query is embedded at the index's size, so the only
    # problem left is that nothing is in it.
    run = run_cli(seeded_cloud, capsys, "search", "--text", "red", "--index", "empty-wide")
    run.one_line_error("index 'empty-wide'", "is empty")
    too_many = str(LIMITS.query_top_k_max + 1)
    bad_k = run_cli(
        seeded_cloud, capsys, "search", "--text", "red", "--index", "empty-wide", "--k", too_many
    )
    bad_k.one_line_error(f"--k {too_many}")
    assert_accounted(seeded_cloud)


def test_entry_point_process_and_missing_credentials(seeded_cloud: LocalCloud) -> None:
    env = dict(seeded_cloud.env)
    ok = run_process(env, "search", "--text", "blue", "--k", "1", "--output", "json")
    assert ok.code == 0, ok.err
    assert json.loads(ok.out)["results"][0]["key"] == "colours/blue.jpg"

    no_creds = {
        k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    run = run_process(no_creds, "search", "--text", "blue")
    run.one_line_error("no AWS credentials")
    assert run.code == 2
    run = run_process(no_creds, "status")
    run.one_line_error("no AWS credentials")
    run = run_process({}, "search", "--text", "blue")  # no region either
    run.one_line_error("no AWS region")

    unreachable = {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    unreachable.pop("AWS_ENDPOINT_URL_SQS", None)
    run = run_process(unreachable, "get", "s3://b/k.jpg", timeout=180)
    run.one_line_error("cannot reach")


def test_status_counts_what_the_pipeline_did(seeded_cloud: LocalCloud, capsys: Capsys) -> None:
    run = run_cli(seeded_cloud, capsys, "status", "--output", "json")
    assert run.code == 0, run.err
    status = _json(run.out)
    assert status["last_hour"]["ImagesEmbedded"] == len(library(seeded_cloud))  # type: ignore[index]
    assert status["last_hour"]["PermanentFailures"] == 0  # type: ignore[index]
    assert status["queue"]["total"] == 0 and status["dlq"]["total"] == 0  # type: ignore[index]
    assert status["eta_seconds"] == 0.0
    table = run_cli(seeded_cloud, capsys, "status")
    assert f"  images embedded      {len(library(seeded_cloud))}" in table.out


def test_a_large_s3_query_image_goes_by_s3_location(
    seeded_cloud: LocalCloud, capsys: Capsys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Above the inline limit the query image is not downloaded: Bedrock reads it from S3."""
    import dataclasses

    from imgsearch.models import MODELS

    model_id = seeded_cloud.cfg.model_id
    small_limit = dataclasses.replace(MODELS[model_id], max_inline_image_bytes=4096)
    monkeypatch.setitem(MODELS, model_id, small_limit)
    bucket = seeded_cloud.resources.source_bucket
    key = "photos/astronaut.jpg"
    data = library(seeded_cloud)[key]
    assert len(data) > 4096
    run = run_cli(
        seeded_cloud, capsys, "search", "--image", f"s3://{bucket}/{key}", "--k", "1",
        "--output", "json",
    )  # fmt: skip
    assert run.code == 0, run.err
    result = _json(run.out)
    assert result["query"]["image_sent"] == "by S3 location"  # type: ignore[index]
    assert result["results"][0]["key"] == key  # type: ignore[index]
    # A local file that large cannot go by location: the error points to S3.
    local = tmp_path / "big.jpg"
    local.write_bytes(data)
    run_cli(seeded_cloud, capsys, "search", "--image", str(local)).one_line_error(
        "big.jpg", "upload it to S3"
    )


def _extra_index(cloud: LocalCloud, name: str) -> VectorIndex:
    """A second index of the deployed dimension, for tests that write their own vectors."""
    client = cloud.client("s3vectors")
    client.create_index(
        vectorBucketName=cloud.resources.vector_bucket,
        indexName=name,
        dataType="float32",
        dimension=cloud.cfg.dimension,
        distanceMetric="cosine",
        metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_KEYS)},
    )
    return VectorIndex(client, cloud.resources.vector_bucket, name)


def test_more_results_than_one_page_come_from_every_page(
    seeded_cloud: LocalCloud, capsys: Capsys
) -> None:
    """Above the page size QueryVectors answers in pages: k results need every nextToken."""
    cfg = seeded_cloud.cfg
    bucket = seeded_cloud.resources.source_bucket
    index = _extra_index(seeded_cloud, "paged")
    count = LIMITS.query_page_max_results + 30
    rng = random.Random(11)
    records = []
    for i in range(count):
        key = f"many/{i:03d}.jpg"
        data = [rng.uniform(-1, 1) for _ in range(cfg.dimension)]
        metadata = build_metadata(
            bucket=bucket, key=key, image=ImageInfo("jpeg", 10, 10), size=100, etag="0" * 32,
            model_id=cfg.model_id, ingested_at="2026-01-01T00:00:00.000Z",
        )  # fmt: skip
        records.append(VectorRecord(vector_key(bucket, key), data, metadata))
    index.put(records)

    run = run_cli(
        seeded_cloud, capsys, "search", "--text", "red", "--index", "paged", "--k", str(count),
        "--output", "json",
    )  # fmt: skip
    assert run.code == 0, run.err
    results = _json(run.out)["results"]
    assert isinstance(results, list)
    assert len(results) == count
    assert len({r["key"] for r in results}) == count
    assert [r["rank"] for r in results] == list(range(1, count + 1))
    distances = [r["distance"] for r in results]
    assert distances == sorted(distances)


# --------------------------------------------------------------------------- issue 12


def _model_calls(cloud: LocalCloud) -> int:
    return dict(cloud.front.requests).get("bedrock:InvokeModel", 0)


def test_like_searches_with_the_stored_vector_and_no_model_call(
    seeded_cloud: LocalCloud, capsys: Capsys
) -> None:
    bucket = seeded_cloud.resources.source_bucket
    before = _model_calls(seeded_cloud)
    run = run_cli(
        seeded_cloud, capsys, "search", "--like", f"s3://{bucket}/photos/rocket.jpg",
        "--k", "2", "--output", "json",
    )  # fmt: skip
    assert run.code == 0, run.err
    data = _json(run.out)
    keys = [r["key"] for r in data["results"]]  # type: ignore[union-attr]
    # The query object itself is left out: its copy comes first.
    assert keys[0] == "photos/rocket-small.jpg" and "photos/rocket.jpg" not in keys
    assert len(keys) == 2
    assert data["query"]["like"] == f"s3://{bucket}/photos/rocket.jpg"  # type: ignore[index]
    assert _model_calls(seeded_cloud) == before

    missing = run_cli(seeded_cloud, capsys, "search", "--like", f"s3://{bucket}/nope/none.jpg")
    assert missing.code != 0
    missing.one_line_error("nope/none.jpg", "imgsearch verify")
    assert _model_calls(seeded_cloud) == before


def test_max_distance_sets_weak_matches_apart(seeded_cloud: LocalCloud, capsys: Capsys) -> None:
    from imgsearch.models import MODELS

    spec = MODELS[seeded_cloud.cfg.model_id]
    assert spec.image_max_distance < spec.text_max_distance
    run = run_cli(seeded_cloud, capsys, "search", "--text", "red", "--k", "3", "--output", "json")
    assert run.code == 0, run.err
    assert _json(run.out)["query"]["max_distance"] == spec.text_max_distance  # type: ignore[index]

    run = run_cli(
        seeded_cloud, capsys, "search", "--text", "red", "--k", "3", "--max-distance", "0",
        "--output", "json",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert all(r["weak"] for r in _json(run.out)["results"])  # type: ignore[union-attr]
    table = run_cli(seeded_cloud, capsys, "search", "--text", "red", "--k", "3",
                    "--max-distance", "0")  # fmt: skip
    assert table.code == 0, table.err
    assert "no good matches" in table.err and "weak matches" in table.out
    bad = run_cli_or_exit(seeded_cloud, capsys, "search", "--text", "x", "--max-distance", "-1")
    bad.one_line_error("--max-distance")


def test_group_duplicates_collapses_identical_copies(
    seeded_cloud: LocalCloud, capsys: Capsys
) -> None:
    cfg = seeded_cloud.cfg
    bucket = seeded_cloud.resources.source_bucket
    index = _extra_index(seeded_cloud, "dups")
    rng = random.Random(5)
    same = [rng.uniform(-1, 1) for _ in range(cfg.dimension)]
    other = [rng.uniform(-1, 1) for _ in range(cfg.dimension)]
    records = []
    for key, data, etag in (
        ("a/one.jpg", same, "1" * 32), ("b/one-copy.jpg", same, "1" * 32),
        ("c/one-again.jpg", same, "2" * 32), ("d/other.jpg", other, "3" * 32),
    ):  # fmt: skip
        metadata = build_metadata(
            bucket=bucket, key=key, image=ImageInfo("jpeg", 10, 10), size=100, etag=etag,
            model_id=cfg.model_id, ingested_at="2026-01-01T00:00:00.000Z",
        )  # fmt: skip
        records.append(VectorRecord(vector_key(bucket, key), data, metadata))
    index.put(records)
    argv = ("search", "--text", "red", "--index", "dups", "--k", "4", "--max-distance", "2")
    run = run_cli(seeded_cloud, capsys, *argv, "--group-duplicates", "--output", "json")
    assert run.code == 0, run.err
    results = _json(run.out)["results"]
    assert isinstance(results, list) and len(results) == 2
    grouped = next(r for r in results if r["key"] != "d/other.jpg")
    assert len(grouped["copies"]) == 2
    table = run_cli(seeded_cloud, capsys, *argv, "--group-duplicates")
    assert table.code == 0, table.err
    assert "+2 copies" in table.out and len(table.out.splitlines()) == 3
    plain = run_cli(seeded_cloud, capsys, *argv, "--output", "json")
    assert len(_json(plain.out)["results"]) == 4  # type: ignore[arg-type]


def test_global_options_before_the_command_and_suggestions(
    seeded_cloud: LocalCloud, capsys: Capsys
) -> None:
    run = run_cli(seeded_cloud, capsys, "--output", "json", "search", "--text", "blue", "--k", "1")
    assert run.code == 0, run.err
    assert _json(run.out)["results"][0]["key"] == "colours/blue.jpg"  # type: ignore[index]
    run_cli_or_exit(seeded_cloud, capsys, "serch", "--text", "x").one_line_error(
        "serch", "did you mean 'search'"
    )
    line = run_cli_or_exit(seeded_cloud, capsys, "search", "--txt", "red").one_line_error(
        "unknown option --txt", "did you mean --text"
    )
    assert "required" not in line
    with pytest.raises(SystemExit):
        run_cli(seeded_cloud, capsys, "search", "--help")
    help_text = capsys.readouterr().out
    assert "examples:" in help_text and "--like s3://" in help_text
    run = run_cli(seeded_cloud, capsys, "search", "--text", "red", "--where", "format=png")
    assert run.code == 0, run.err
    assert 'filter sent: {"format": "png"}' in run.err or '"format"' in run.err
