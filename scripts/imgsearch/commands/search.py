"""``imgsearch search``: text or image search, printed as a table or JSON."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from imgsearch.limits import LIMITS
from scripts.common.console import human_bytes, print_json, render_table
from scripts.common.errors import EXIT_OK
from scripts.imgsearch.context import Context, say
from scripts.ops import where
from scripts.ops.search import DEFAULT_K, SearchResult

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("search", parents=[common], help="text or image search")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help='what to look for, e.g. "wind turbine"')
    what.add_argument("--image", help="an image to find similar ones: a local path or s3:// URI")
    p.add_argument(
        "--k",
        type=int,
        default=DEFAULT_K,
        help=f"number of results (default {DEFAULT_K}, at most {LIMITS.query_top_k_max})",
    )
    p.add_argument(
        "--where",
        action="append",
        metavar="EXPR",
        help="metadata filter: prefix=05/, format!=gif, width>=1024 (repeatable, ANDed)",
    )
    p.add_argument("--filter", help='an S3 Vectors filter as JSON, e.g. \'{"format": "png"}\'')
    p.set_defaults(run=run)


def run(ctx: Context) -> int:
    args = ctx.args
    filter_doc = where.combine(args.where or (), args.filter)
    searcher = ctx.searcher()
    if args.text is not None:
        result = searcher.text(args.text, k=args.k, filter=filter_doc)
    else:
        result = searcher.image_at(args.image, k=args.k, filter=filter_doc)
    print_search(result, ctx.json)
    return EXIT_OK


def print_search(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
        return
    if not result.hits:
        say(f"no results match the filter {result.query.get('filter')}")
        return
    rows = [
        {
            "rank": h.rank,
            "distance": h.distance,
            "uri": h.uri,
            "size": human_bytes(h.size),
            "dimensions": h.dimensions,
        }
        for h in result.hits
    ]
    columns = [
        ("rank", "RANK"),
        ("distance", "DISTANCE"),
        ("uri", "SOURCE"),
        ("size", "SIZE"),
        ("dimensions", "WxH"),
    ]
    print(render_table(rows, columns))
