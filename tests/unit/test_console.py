"""What the people-facing output shows: object keys may hold any character."""

from __future__ import annotations

from scripts.common.console import render_pairs, render_table


def test_a_key_with_terminal_escapes_is_shown_escaped_not_acted_on() -> None:
    key = "photos/\x1b]0;pwned\x07a\x1b[2Jb\u202etxt.jpg"
    shown = render_pairs([("object", f"s3://bucket/{key}")])
    assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
    assert shown == "object  s3://bucket/photos/\\x1b]0;pwned\\x07a\\x1b[2Jb\\u202etxt.jpg"
    table = render_table([{"key": key}], [("key", "KEY")])
    assert table.splitlines()[1] == "photos/\\x1b]0;pwned\\x07a\\x1b[2Jb\\u202etxt.jpg"


def test_printable_unicode_and_newlines_read_as_before() -> None:
    assert render_pairs([("key", "fotos/año/日本 写真.jpg")]) == "key  fotos/año/日本 写真.jpg"
    assert render_pairs([("objects", "a.jpg\nb.jpg")]) == "objects  a.jpg b.jpg"
