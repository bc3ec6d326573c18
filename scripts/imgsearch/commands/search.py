"""``imgsearch search``: text, image or "more like this" search, printed as a table or JSON."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from imgsearch.limits import LIMITS
from imgsearch.search import DEFAULT_K, Hit, SearchResult
from imgsearch.search_filters import combine
from scripts.common import search_api
from scripts.common.console import human_bytes, print_json, render_table
from scripts.common.errors import EXIT_OK
from scripts.imgsearch.context import Context, say

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
  imgsearch search --image ./cat.jpg --k 20 --where prefix=trips/     # trips/ and below
  imgsearch search --text beach --where folder=trips/2024/ --where modified_epoch>=1714521600
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
        help=(
            "metadata filter: prefix=trips/ (that folder and all below it), folder=trips/ "
            "(that folder only), format!=gif, width>=1024, modified_epoch>=1714521600 "
            "(repeatable, ANDed)"
        ),
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
    p.add_argument(
        "--api",
        action="store_true",
        help="send the query to the deployed search API (signed with your credentials; "
        "needs execute-api:Invoke only) instead of calling Bedrock and S3 Vectors",
    )
    p.add_argument("--api-url", help="the search API's URL (default: the stack's SearchApiUrl)")
    p.set_defaults(run=run)


def run(ctx: Context) -> int:
    args = ctx.args
    filter_doc = combine(args.where or (), args.filter)
    if filter_doc is not None:
        say(f"filter sent: {json.dumps(filter_doc, sort_keys=True)}")
    if args.api or args.api_url:
        return run_api(ctx, filter_doc)
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


def run_api(ctx: Context, filter_doc: dict[str, object] | None) -> int:
    """The same query through the search API; ``--output json`` prints its answer as is."""
    args = ctx.args
    body = search_api.request_body(
        text=args.text,
        image=args.image,
        like=args.like,
        k=args.k,
        filter_doc=filter_doc,
        max_distance=args.max_distance,
        group_duplicates=args.group_duplicates,
    )
    endpoint = search_api.signed_endpoint(ctx.deployment.search_api_url(args.api_url), ctx.clients)
    ctx.show_notes()
    answer = endpoint.search(body)
    if ctx.json:
        print_json(answer)
    else:
        print_search(search_api.result_from_answer(answer), False)
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
