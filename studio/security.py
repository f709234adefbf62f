"""Safe by default: loopback unless a token is set, the token on every request, CSRF tokens
bound to a cookie on every POST, cross-site POSTs refused, and strict response headers.

The CSRF token is an HMAC of a random cookie under a secret that lives only in this process,
so a token cannot be made for a cookie planted from elsewhere, and a restarted studio asks
for a reload.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from domain.errors import ConfigurationError
from studio.errors import StudioError

TOKEN_ENV = "STORYBOARD_STUDIO_TOKEN"
TOKEN_COOKIE = "storyboard_studio_token"
TOKEN_QUERY = "token"
CSRF_COOKIE = "storyboard_studio_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; style-src 'self'; "
        "script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Not no-referrer: with it a browser sends `Origin: null` on same-origin form posts.
    "Referrer-Policy": "same-origin",
}

Handler = Callable[[Request], Awaitable[Response]]


def is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = frozenset({"0.0.0.0", "::", "[::]", ""})


def check_bind(host: str, token: str | None, allowed_hosts: tuple[str, ...] = ()) -> None:
    """ConfigurationError unless `host` is loopback or a token protects the studio, and
    unless a wildcard bind names the hosts the studio answers to."""
    if not is_loopback(host) and not token:
        raise ConfigurationError(
            f"--host {host} is not a loopback address: set {TOKEN_ENV} so that every request "
            "must carry it, or listen on 127.0.0.1"
        )
    if host in WILDCARD_BINDS and not allowed_hosts:
        raise ConfigurationError(
            f"--host {host} listens on every address: name the host names the studio answers "
            "to with --allowed-host NAME"
        )


def trusted_hosts(host: str, allowed_hosts: tuple[str, ...]) -> list[str]:
    """The names a request's Host may carry: the bound address, loopback's names and those
    the operator lists; any other (a DNS-rebinding page's) gets 400 before any handler."""
    bound = f"[{host.strip('[]')}]" if ":" in host else host
    names = [*LOOPBACK_NAMES, *allowed_hosts] + ([] if host in WILDCARD_BINDS else [bound])
    return list(dict.fromkeys(name.lower() for name in names))


def wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


class Guard:
    """The token and the CSRF checks of one running studio."""

    def __init__(self, token: str | None, secret: bytes | None = None) -> None:
        self.token = token
        self._secret = secret or secrets.token_bytes(32)

    def token_matches(self, given: str | None) -> bool:
        return bool(self.token and given and hmac.compare_digest(given, self.token))

    def authorized(self, request: Request) -> bool:
        if not self.token:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.token_matches(given.strip()):
            return True
        return self.token_matches(request.cookies.get(TOKEN_COOKIE))

    def csrf_token_for(self, cookie: str) -> str:
        return hmac.new(self._secret, cookie.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, request: Request, submitted: str | None) -> None:
        """StudioError 403 unless `submitted` (the form field) or the X-CSRF-Token header is
        the token of this browser's CSRF cookie."""
        cookie = request.cookies.get(CSRF_COOKIE)
        given = request.headers.get(CSRF_HEADER) or submitted
        if not cookie or not given:
            raise StudioError(403, "missing CSRF token: reload the page and try again")
        if not hmac.compare_digest(given, self.csrf_token_for(cookie)):
            raise StudioError(403, "stale or foreign CSRF token: reload the page and try again")


def cross_site_reason(request: Request) -> str | None:
    """Why a state-changing request comes from another site, or None when it does not."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"refused a {fetch_site} request"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    # The host only: behind a proxy that ends TLS the page is https and the studio sees http.
    if urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        return f"refused a request from another origin ({origin})"
    return None


def _refused(request: Request, status: int, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status)
    return PlainTextResponse(message, status_code=status)


def _token_visit(request: Request, guard: Guard) -> Response | None:
    """`?token=...` on a page: a cookie that carries the token from now on, and the same page
    without it in the address bar."""
    given = request.query_params.get(TOKEN_QUERY)
    if given is None or request.method not in SAFE_METHODS:
        return None
    if not guard.token_matches(given):
        return _refused(request, 401, "wrong token")
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != TOKEN_QUERY]
    path = "/" + request.url.path.lstrip("/\\")  # "//host/x" would lead to another site
    location = path + (f"?{urlencode(kept)}" if kept else "")
    response = RedirectResponse(location, status_code=303)
    response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="lax")
    return response


def guard_middleware(guard: Guard) -> Callable[[Request, Handler], Awaitable[Response]]:
    """The HTTP middleware: token (401), cross-site POSTs (403), a CSRF cookie for every
    browser, the security headers on every response."""

    async def middleware(request: Request, call_next: Handler) -> Response:
        response = _token_visit(request, guard) if guard.token else None
        if response is None and not guard.authorized(request):
            response = _refused(
                request, 401, f"this studio needs its token ({TOKEN_ENV}): open it with ?token="
            )
        if response is None and request.method not in SAFE_METHODS:
            reason = cross_site_reason(request)
            response = _refused(request, 403, reason) if reason else None
        new_cookie = None
        if response is None:
            if not request.cookies.get(CSRF_COOKIE):
                new_cookie = secrets.token_urlsafe(32)
            request.state.csrf_cookie = request.cookies.get(CSRF_COOKIE) or new_cookie
            response = await call_next(request)
        if new_cookie:
            response.set_cookie(CSRF_COOKIE, new_cookie, httponly=True, samesite="lax")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    return middleware
