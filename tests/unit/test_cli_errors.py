"""Every tool's error reaches the operator the same way: one stderr line, its exit code."""

from __future__ import annotations

import pytest

from imgsearch.s3uri import parse_s3_uri
from imgsearch.search_errors import (
    EmbeddingThrottled,
    EmptyIndex,
    FilterError,
    ResourceNotFound,
    SearchError,
    SearchInputError,
)
from scripts.common.cli import run_main
from scripts.common.errors import (
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    CliError,
    DeploymentError,
    ToolError,
)
from scripts.ops import errors as ops_errors
from scripts.ops.errors import BucketNotFound, OpsError


class _OtherToolError(ToolError):
    """Stands for a tool run_main has never heard of (the backfill's BackfillError)."""

    exit_code = EXIT_INCOMPLETE


def _fail(exc: BaseException) -> int:
    def body() -> int:
        raise exc

    return run_main(body, prog="tool")


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (CliError("bad\n  option"), EXIT_ERROR),
        (CliError("done, not all", EXIT_INCOMPLETE), EXIT_INCOMPLETE),
        (DeploymentError("queue 'q' does not exist"), EXIT_ERROR),
        (BucketNotFound("source bucket 'b' does not exist"), EXIT_ERROR),
        (_OtherToolError("some rows were rejected"), EXIT_INCOMPLETE),
        (_OtherToolError("given code wins", 3), 3),
    ],
)
def test_any_tool_error_is_one_line_with_its_exit_code(
    exc: ToolError, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _fail(exc) == code
    err = capsys.readouterr().err
    assert err == f"tool: error: {' '.join(str(exc).split())}\n"


def test_the_cores_s3_uri_error_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> int:
        parse_s3_uri("photos/a.jpg")
        return 0

    assert run_main(body, prog="tool") == EXIT_ERROR
    assert (
        capsys.readouterr().err == "tool: error: S3 URI 'photos/a.jpg': expected s3://bucket/key\n"
    )


@pytest.mark.parametrize(
    "exc",
    [
        ResourceNotFound("index 'i' does not exist"),
        FilterError("--where 'x': unknown key"),
        SearchInputError("--k 0: use 1..100\n  or fewer"),
        EmptyIndex("index 'i' holds no vectors yet"),
        EmbeddingThrottled("Bedrock kept throttling: try again"),
    ],
)
def test_the_cores_search_errors_are_one_line_and_exit_2(
    exc: SearchError, capsys: pytest.CaptureFixture[str]
) -> None:
    # The core's own classes, whatever their HTTP status: the CLI has no copies of them.
    assert _fail(exc) == EXIT_ERROR
    assert capsys.readouterr().err == f"tool: error: {' '.join(str(exc).split())}\n"


def test_each_layer_has_its_own_errors_under_the_one_base() -> None:
    assert issubclass(BucketNotFound, OpsError)
    # The search errors are the core's alone: no tool error of the same name remains.
    assert not issubclass(SearchError, ToolError)
    search_names = {"SearchInputError", "FilterError", "ResourceNotFound", "IndexMismatch"}
    assert not search_names & set(vars(ops_errors))
    for kind in (CliError, DeploymentError, OpsError):
        assert issubclass(kind, ToolError)
    # Library errors are not the CLI's: the web page must not treat them as argv mistakes.
    assert not issubclass(OpsError, CliError) and not issubclass(DeploymentError, CliError)
