"""The imgsearch CLI's usage errors: one line, naming the mistyped word, with a suggestion."""

from __future__ import annotations

import pytest

from scripts.imgsearch.parser import build_parser


def _usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(list(argv))
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_mistyped_global_option_before_the_command_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # argparse alone says "invalid choice: 'json'": the option's value taken for a command.
    line = _usage_error(capsys, "--outptu", "json", "search", "--text", "x")
    assert "unknown option --outptu (did you mean --output?)" in line
    assert "json" not in line


def test_a_mistyped_command_still_gets_its_suggestion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _usage_error(capsys, "--output", "json", "serch", "--text", "x")
    assert "unknown command 'serch' (did you mean 'search'?)" in line


def test_a_mistyped_option_after_the_command_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _usage_error(capsys, "search", "--txt", "red")
    assert "unknown option --txt (did you mean --text?)" in line


def test_the_process_arguments_are_read_when_none_are_passed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.argv", ["imgsearch", "--outptu", "json", "status"])
    with pytest.raises(SystemExit):
        build_parser().parse_args()
    assert "unknown option --outptu" in capsys.readouterr().err
