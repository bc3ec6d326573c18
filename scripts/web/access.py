"""Who may ask the web server: the Host check, the token off loopback, cross-site rules.

:class:`Access` runs before any route (:class:`AccessGuard`, before any body is read):

* the ``Host`` header must be the server's own address (DNS rebinding: a hostile name
  resolving to 127.0.0.1 gets 403);
* bound to another interface, every request needs the token printed at start (a cookie
  set by visiting ``/?token=...``, or the ``X-Imgsearch-Token`` header);
* ``/api/`` refuses a cross-site ``Origin`` or ``Sec-Fetch-Site`` and needs the custom
  header ``X-Imgsearch``, so a browser must preflight, and the preflight fails because
  the app sends no CORS headers (an ``<img src>`` or a no-cors form POST never reaches
  Bedrock);
* ``/thumb`` and ``/original`` are loaded by ``<img src>`` and links, which cannot send
  that header: they refuse ``Sec-Fetch-Site: cross-site`` / ``same-site`` instead, so
  another site cannot embed the library's images.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from scripts.web.http_errors import error

API_HEADER = "X-Imgsearch"
"""The custom header every ``/api`` call needs: not CORS-safelisted, so a browser preflights."""
TOKEN_HEADER = "X-Imgsearch-Token"
TOKEN_COOKIE = "imgsearch_token"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""Addresses only this machine reaches: ``serve`` needs no token there."""
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
IMAGE_PATHS = ("/thumb", "/original")
"""Routes an ``<img src>`` or a link loads: no custom header, but never for another site."""


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class Access:
    """Where the server listens, and the token it asks for off loopback."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None

    def allowed_hosts(self) -> frozenset[str] | None:
        """``Host`` headers that name this server; None: any (a wildcard bind, token-guarded)."""
        if self.host in WILDCARD_HOSTS:
            return None
        names = {self.host} | (LOOPBACK_HOSTS - {"::1"} if self.host in LOOPBACK_HOSTS else set())
        if self.host == "::1":
            names.add("localhost")
        allowed = {_host_port(n, self.port) for n in names}
        if self.port == 80:  # browsers leave the default port out
            allowed |= {f"[{n}]" if ":" in n else n for n in names}
        return frozenset(allowed)

    def url(self) -> str:
        """The address to open; with the token, the visit that sets its cookie."""
        base = f"http://{_host_port(self.host, self.port)}/"
        return f"{base}?token={self.token}" if self.token else base

    def _has_token(self, request: Request) -> bool:
        assert self.token is not None
        given = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or ""
        return hmac.compare_digest(given.encode(), self.token.encode())

    def check(self, request: Request) -> Response | None:
        """The refusal (403) or token redirect for this request; None lets it through."""
        host = request.headers.get("host", "")
        allowed = self.allowed_hosts()
        if allowed is not None and host not in allowed:
            return error(
                f"Host {host!r} is not this server's address; open {self.url()} instead", 403
            )
        path = request.url.path
        if self.token is not None and not self._has_token(request):
            offered = request.query_params.get("token")
            if (
                path == "/"
                and offered
                and hmac.compare_digest(offered.encode(), self.token.encode())
            ):
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
                return response
            return error(
                "this server needs its token: open the URL with ?token=... that "
                "imgsearch serve printed at start",
                403,
            )
        if path.startswith("/api/"):
            return cross_site(request, host)
        if path in IMAGE_PATHS:
            return _foreign_site(request)
        return None


def _foreign_site(request: Request) -> Response | None:
    """403 when the browser says another site (or a sibling subdomain) asked."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return error(f"cross-site request refused (Sec-Fetch-Site: {site})", 403)
    return None


def cross_site(request: Request, host: str) -> Response | None:
    """403 for API calls another site's page made the browser send."""
    refused = _foreign_site(request)
    if refused is not None:
        return refused
    origin = request.headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        return error(f"request from another origin refused (Origin: {origin})", 403)
    if request.headers.get(API_HEADER) is None:
        return error(
            f"API calls need the {API_HEADER} header (the page sends it); "
            "requests from other sites are refused",
            403,
        )
    return None


class AccessGuard:
    """ASGI middleware: :meth:`Access.check` before any route (and before any body is read)."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = self.access.check(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


__all__ = [
    "API_HEADER",
    "LOOPBACK_HOSTS",
    "TOKEN_COOKIE",
    "TOKEN_HEADER",
    "WILDCARD_HOSTS",
    "Access",
    "AccessGuard",
    "cross_site",
]
