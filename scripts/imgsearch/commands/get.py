"""``imgsearch get``: one vector's metadata (and optionally its data), by its object's URI."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from imgsearch.messages import vector_key
from scripts.common.console import print_json, render_pairs
from scripts.common.errors import EXIT_INCOMPLETE, EXIT_OK, CliError
from scripts.imgsearch.context import Context, object_uri

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("get", parents=[common], help="a vector's metadata, by its object's URI")
    p.add_argument("uri", help="s3://bucket/key of the source image")
    p.add_argument("--with-data", action="store_true", help="also fetch the vector itself")
    p.set_defaults(run=run)


def run(ctx: Context) -> int:
    location = object_uri(ctx.args.uri)
    vkey = vector_key(location.bucket, location.key)
    found = ctx.index.get([vkey], return_data=ctx.args.with_data).get(vkey)
    if found is None:
        raise CliError(
            f"no vector for {ctx.args.uri} (vector key {vkey}): not indexed yet, failed, or "
            "deleted; `imgsearch verify --all` names a recorded failure",
            EXIT_INCOMPLETE,
        )
    if ctx.json:
        print_json({"uri": ctx.args.uri, **found})
        return EXIT_OK
    metadata = found.get("metadata") or {}
    pairs: list[tuple[str, Any]] = [("uri", ctx.args.uri), ("vector key", vkey)]
    pairs += [(name, metadata[name]) for name in sorted(metadata)]
    if "data" in found:
        data = found["data"] or []
        preview = ", ".join(f"{x:.4f}" for x in data[:4])
        pairs.append(("data", f"[{preview}, ...] ({len(data)} dimensions)"))
    print(render_pairs(pairs))
    return EXIT_OK
