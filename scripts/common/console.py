"""How the ``imgsearch`` commands print: an aligned table for people, JSON for scripts.

Like the AWS CLI's ``--output``: ``table`` (the default) is for reading, ``json`` is
stable and complete (every field, machine units) for ``jq`` and other programs. Results
go to stdout; notes and errors go to stderr so that piping stdout stays clean.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TextIO

OutputFormat = Literal["table", "json"]
OUTPUT_FORMATS: tuple[str, ...] = ("table", "json")


def print_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    json.dump(value, out, indent=2, sort_keys=False, default=str, ensure_ascii=False)
    out.write("\n")


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """``columns`` = (field, header) pairs; numbers right-aligned, None shown as ``-``."""
    cells = [[_cell(row.get(name)) for name, _ in columns] for row in rows]
    headers = [header for _, header in columns]
    widths = [max([len(headers[i]), *(len(r[i]) for r in cells)]) for i in range(len(columns))]
    numeric = [
        all(isinstance(row.get(name), int | float) or row.get(name) is None for row in rows)
        for name, _ in columns
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row_cells in cells:
        parts = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(row_cells, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def render_pairs(pairs: Sequence[tuple[str, Any]]) -> str:
    """``label  value`` lines, labels aligned (for one record, e.g. ``get`` or ``status``)."""
    width = max((len(label) for label, _ in pairs), default=0)
    return "\n".join(f"{label.ljust(width)}  {_cell(value)}".rstrip() for label, value in pairs)


def note(message: str, err: TextIO | None = None) -> None:
    """A line for the operator that is not part of the result (stderr)."""
    print(message, file=err or sys.stderr)


def human_bytes(size: int | None) -> str | None:
    if size is None:
        return None
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - loop always returns


def format_duration(seconds: float) -> str:
    """``93784`` -> ``1d 2h 3m``; short and readable in a summary."""
    seconds = round(max(0.0, float(seconds)))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.0f}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value).replace("\n", " ").translate(_UNPRINTABLE)


_UNPRINTABLE = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in (
        *range(0x20),
        *range(0x7F, 0xA0),
        0x200E,  # bidi marks and overrides: they reorder what follows on the terminal
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
}
"""Characters a table cell shows escaped: an object key may hold any of them, and a
terminal would act on an escape sequence (move the cursor, retitle the window, hide
text) instead of showing it. JSON output escapes them anyway."""


__all__ = [
    "OUTPUT_FORMATS",
    "OutputFormat",
    "format_duration",
    "human_bytes",
    "note",
    "print_json",
    "render_pairs",
    "render_table",
]
