"""``imgsearch search``: text, image or "more like this" search, printed as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from imgsearch.limits import LIMITS
from scripts.common.console import human_bytes, print_json, render_table
from scripts.common.errors import EXIT_OK
from scripts.imgsearch.context import Context, say
from scripts.ops import where
from scripts.ops.search import DEFAULT_K, Hit, SearchResult

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers

DESCRIPTION = """\
Search the image index by text, by an image, or with an indexed image's stored
vector (--like: no model call, no cost). Results farther than --max-distance are
listed apart as weak matches. Distance is the index's cosine distance: 0 is the
same vector, smaller is more alike."""

EXAMPLES = """\
examples:
  imgsearch search --text "wind turbine"
  imgsearch search --image ./cat.jpg --k 20 --where prefix=trips/
  imgsearch search --like s3://my-photos/trips/beach.jpg --group-duplicates
  imgsearch --output json search --text red --filter '{"format": "png"}'"""


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "search",
        parents=[common],
        help="text, image or more-like-this search",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help='what to look for, e.g. "wind turbine"')
    what.add_argument("--image", help="an image to find similar ones: a local path or s3:// URI")
    what.add_argument(
        "--like",
        metavar="S3_URI",
        help="an indexed object: search with its stored vector (no Bedrock call)",
    )
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
    p.add_argument(
        "--max-distance",
        type=float,
        metavar="D",
        help="results farther than D are weak matches (default from the model: 0.8 for Nova "
        "text queries, closer for image and --like queries)",
    )
    p.add_argument(
        "--group-duplicates",
        action="store_true",
        help='fold identical copies (same ETag or same vector) into one row with "+N copies"',
    )
    p.set_defaults(run=run)


def run(ctx: Context) -> int:
    args = ctx.args
    filter_doc = where.combine(args.where or (), args.filter)
    if filter_doc is not None:
        say(f"filter sent: {json.dumps(filter_doc, sort_keys=True)}")
    searcher = ctx.searcher()
    k, cut = args.k, args.max_distance
    if args.text is not None:
        result = searcher.text(args.text, k=k, filter=filter_doc, max_distance=cut)
    elif args.like is not None:
        result = searcher.like(args.like, k=k, filter=filter_doc, max_distance=cut)
    else:
        result = searcher.image_at(args.image, k=k, filter=filter_doc, max_distance=cut)
    if args.group_duplicates:
        result = searcher.group_duplicates(result)
    print_search(result, ctx.json)
    return EXIT_OK


COLUMNS = [
    ("rank", "RANK"),
    ("distance", "DISTANCE"),
    ("uri", "SOURCE"),
    ("size", "SIZE"),
    ("dimensions", "WxH"),
]


def _rows(hits: list[Hit]) -> list[dict[str, object]]:
    return [
        {
            "rank": h.rank,
            "distance": h.distance,
            "uri": f"{h.uri} (+{len(h.copies)} copies)" if h.copies else h.uri,
            "size": human_bytes(h.size),
            "dimensions": h.dimensions,
        }
        for h in hits
    ]


def print_search(result: SearchResult, as_json: bool) -> None:
    if as_json:
        print_json(result.as_dict())
        return
    if not result.hits:
        say(f"no results match the filter {json.dumps(result.query.get('filter'))}")
        return
    good = [h for h in result.hits if not h.weak]
    weak = [h for h in result.hits if h.weak]
    cut = result.query.get("max_distance")
    if good:
        print(render_table(_rows(good), COLUMNS))
    else:
        say(f"no good matches: every result is farther than --max-distance {cut}")
    if weak:
        if good:
            print()
        print(f"weak matches (distance above {cut}):")
        print(render_table(_rows(weak), COLUMNS))
