"""``imgsearch serve``: the search web page on 127.0.0.1, for the deployment the options name.

``--host`` binds another interface; the server then prints a URL with a random token, and
answers only requests that present it (see :class:`scripts.web.access.Access`). Thumbnails
are cached on disk (``--thumb-cache``, bounded by ``--thumb-cache-mb``). ``--api`` (or
``--api-url``) sends every search to the deployed search API, signed with the operator's
credentials: the server then needs ``execute-api:Invoke`` and no Bedrock or S3 Vectors
permission (thumbnails and originals still read the source bucket: ``s3:GetObject``).
"""

from __future__ import annotations

import argparse
import secrets
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from scripts.common.console import note
from scripts.common.errors import EXIT_OK, CliError
from scripts.common.search_api import signed_endpoint
from scripts.imgsearch.context import PROG, Context
from scripts.ops.failure_log import embedder_log_group

if TYPE_CHECKING:
    from collections.abc import Callable

    from scripts.imgsearch.commands import Subparsers
    from scripts.web.app import WebContext

DEFAULT_PORT = 8000
DEFAULT_HOST = "127.0.0.1"
DEFAULT_THUMB_CACHE_MB = 256


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="the search web page on 127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}); any other needs the printed token",
    )
    p.add_argument(
        "--thumb-cache",
        type=Path,
        metavar="DIR",
        help="where thumbnails are kept (default $XDG_CACHE_HOME/imgsearch/thumbs, "
        "else ~/.cache/imgsearch/thumbs)",
    )
    p.add_argument(
        "--thumb-cache-mb",
        type=int,
        default=DEFAULT_THUMB_CACHE_MB,
        metavar="N",
        help=f"bound of the thumbnail cache in MB, least recently used out first "
        f"(default {DEFAULT_THUMB_CACHE_MB})",
    )
    p.add_argument("--log-group", help="the embedder's log group (default: from the stack)")
    p.add_argument(
        "--api",
        action="store_true",
        help="search through the deployed search API (signed with your credentials; needs "
        "execute-api:Invoke, no Bedrock or S3 Vectors permission)",
    )
    p.add_argument(
        "--api-url", help="the search API's URL (implies --api; default: the stack's SearchApiUrl)"
    )
    p.set_defaults(run=run)


def web_context(ctx: Context) -> WebContext:
    """The web page's view of the deployment this command's options name."""
    from scripts.web.app import WebContext  # Starlette loads only for `serve`
    from scripts.web.thumbnails import ThumbCache, default_cache_dir

    mb = ctx.args.thumb_cache_mb
    if mb < 1:
        raise CliError(f"--thumb-cache-mb {mb}: give at least 1 (MB of thumbnails to keep)")
    source_bucket = ctx.deployment.source_bucket(ctx.args.source_bucket)
    search_api = None
    if ctx.args.api or ctx.args.api_url:
        url = ctx.deployment.search_api_url(ctx.args.api_url)
        search_api = signed_endpoint(url, ctx.clients)
    ctx.show_notes()
    return WebContext.for_deployment(
        ctx.cfg,
        ctx.clients,
        vector_bucket=ctx.vector_bucket(),
        index_name=ctx.index_name(),
        queue_url=ctx.queue_url,
        dlq_url=ctx.dlq_url,
        source_bucket=source_bucket,
        thumbs=ThumbCache(ctx.args.thumb_cache or default_cache_dir(), mb * 1024 * 1024),
        log_group=_log_group(ctx),
        search_api=search_api,
    )


def _log_group(ctx: Context) -> Callable[[], str | None]:
    """The embedder's log group, looked up once, on the failure list's first call."""
    lock = threading.Lock()
    found: list[str | None] = []

    def lookup() -> str | None:
        with lock:
            if not found:
                found.append(
                    ctx.args.log_group
                    or embedder_log_group(ctx.clients("lambda"), ctx.deployment.embedder_function())
                )
            return found[0]

    return lookup


def run(ctx: Context) -> int:
    import uvicorn

    from scripts.web.app import LOOPBACK_HOSTS, Access, create_app

    port, host = ctx.args.port, ctx.args.host.strip("[]")
    if not 0 <= port <= 65535:
        raise CliError(f"--port {port}: use 1..65535 (0 picks a free port)")
    web = web_context(ctx)
    # Bind first, so a busy port is one clear error before anything is printed.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # Listen now: the URL is printed before uvicorn starts, and a client that
        # connects in between must queue in the backlog, not get "connection refused".
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CliError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror})"
        ) from exc
    port = sock.getsockname()[1]
    token = None if host in LOOPBACK_HOSTS else secrets.token_urlsafe(24)
    access = Access(host=host, port=port, token=token)
    server = uvicorn.Server(uvicorn.Config(create_app(web, access), log_level="warning"))
    note(f"{PROG}: serving index {web.describe()} on {access.url()} (Ctrl-C to stop)")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return EXIT_OK
