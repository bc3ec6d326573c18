"""Every tool's error reaches the operator the same way: one stderr line, its exit code."""

from __future__ import annotations

import pytest

from imgsearch.s3uri import parse_s3_uri
from scripts.common.cli import run_main
from scripts.common.errors import (
    EXIT_ERROR,
    EXIT_INCOMPLETE,
    CliError,
    DeploymentError,
    ToolError,
)
from scripts.ops.errors import FilterError, OpsError, ResourceNotFound, SearchInputError


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
        (ResourceNotFound("index 'i' does not exist"), EXIT_ERROR),
        (FilterError("--where 'x': unknown key"), EXIT_ERROR),
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


def test_each_layer_has_its_own_errors_under_the_one_base() -> None:
    assert issubclass(SearchInputError, OpsError) and issubclass(FilterError, SearchInputError)
    for kind in (CliError, DeploymentError, OpsError):
        assert issubclass(kind, ToolError)
    # Library errors are not the CLI's: the web page must not treat them as argv mistakes.
    assert not issubclass(OpsError, CliError) and not issubclass(DeploymentError, CliError)
