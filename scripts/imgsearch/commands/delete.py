"""``imgsearch delete``: remove the vector of one object, or of every object under a prefix."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from imgsearch.messages import vector_key
from imgsearch.s3uri import parse_s3_uri
from scripts.common.console import print_json
from scripts.common.errors import EXIT_INCOMPLETE, EXIT_OK, CliError
from scripts.imgsearch.context import Context, object_uri, say
from scripts.ops import deletion
from scripts.ops.objects import SourceBucket, object_exists

if TYPE_CHECKING:
    from scripts.imgsearch.commands import Subparsers


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("delete", parents=[common], help="delete vectors by object URI or prefix")
    p.add_argument("uri", nargs="?", help="s3://bucket/key of the source image")
    p.add_argument(
        "--prefix", metavar="S3_URI", help="every vector of objects under s3://bucket/prefix/"
    )
    p.add_argument(
        "--scan-index",
        action="store_true",
        help="with --prefix: also walk the index for vectors of objects already deleted",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(run=run)


def run(ctx: Context) -> int:
    args = ctx.args
    if (args.uri is None) == (args.prefix is None):
        raise CliError("delete: give either s3://bucket/key or --prefix s3://bucket/prefix/")
    if args.uri is not None:
        return _delete_one(ctx, args.uri)
    return _delete_prefix(ctx, args.prefix)


def _delete_one(ctx: Context, uri: str) -> int:
    location = object_uri(uri)
    vkey = vector_key(location.bucket, location.key)
    existed = vkey in ctx.index.get([vkey])
    if existed:
        ctx.index.delete([vkey])
    still_there = object_exists(
        ctx.clients("s3"), location.bucket, location.key, owner=_owner(ctx, location.bucket)
    )
    result = {"uri": uri, "vector_key": vkey, "deleted": existed, "object_exists": still_there}
    if ctx.json:
        print_json(result)
    else:
        print(
            f"deleted the vector of {uri}" if existed else f"no vector for {uri}: nothing to delete"
        )
    if still_there:
        say(
            "note: the object still exists; its next upload event or a backfill "
            "indexes it again (delete the object to keep it out of the index)"
        )
    return EXIT_OK


def _delete_prefix(ctx: Context, prefix_uri: str) -> int:
    args = ctx.args
    location = parse_s3_uri(prefix_uri, "--prefix")
    bucket, prefix = location.bucket, location.key
    plan = deletion.plan_prefix(
        ctx.clients("s3"),
        ctx.index,
        bucket,
        prefix,
        scan_index=args.scan_index,
        owner=_owner(ctx, bucket),
    )
    if plan.count == 0:
        message = (
            f"no vectors under s3://{bucket}/{prefix} ({plan.objects_listed} objects listed"
            + ("" if args.scan_index else "; --scan-index also finds vectors of deleted objects")
            + ")"
        )
        if ctx.json:
            print_json({"prefix": prefix_uri, "deleted": 0, "objects_listed": plan.objects_listed})
        else:
            print(message)
        return EXIT_OK
    _confirm(
        f"delete {plan.count} vector(s) of objects under s3://{bucket}/{prefix} from index "
        f"{ctx.index.index!r}?",
        args.yes,
    )
    deleted = deletion.execute(ctx.index, plan)
    if ctx.json:
        print_json(
            {
                "prefix": prefix_uri,
                "deleted": deleted,
                "objects_listed": plan.objects_listed,
                "found_by_scan": plan.found_by_scan,
                "uris": sorted(plan.uris.values()),
            }
        )
    else:
        print(f"deleted {deleted} vector(s) under s3://{bucket}/{prefix}")
    return EXIT_OK


def _owner(ctx: Context, bucket: str) -> str | None:
    """The deployment's source bucket owner, for calls on the source bucket only."""
    source = SourceBucket(
        ctx.deployment.source_bucket(ctx.args.source_bucket), ctx.cfg.source_bucket_owner
    )
    ctx.show_notes()
    return source.owner_for(bucket)


def _confirm(question: str, assume_yes: bool) -> None:
    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} Not confirmed: pass --yes to confirm without a terminal")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("cancelled: nothing was deleted", EXIT_INCOMPLETE)
