"""The reference dashboard: a static page, an ES module and a stylesheet served at ``/dashboard``.

The files hold no data: the page signs in from the browser (``/oauth/token``) and reads the
GraphQL API with the user's token, so these routes are open (api/auth/middleware.py).
"""

from __future__ import annotations

from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
# Scripts and styles from this origin only; the API (fetch and WebSocket) on this origin only.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _read(name: str) -> bytes:
    """A file of the package, read per request so an edited file shows without a restart."""
    return resources.files(__package__).joinpath(name).read_bytes()


def _headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": _CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


async def dashboard_page(request: Request) -> Response:
    """The page itself."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=_headers())


async def dashboard_asset(request: Request) -> Response:
    """The page's script and stylesheet; anything else is a 404."""
    name = request.path_params["name"]
    media_type = _ASSETS.get(name)
    if media_type is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(_read(name), media_type=media_type, headers=_headers())


def dashboard_routes() -> list[Route]:
    """The dashboard's routes for the application factory."""
    return [
        Route("/dashboard", dashboard_page, methods=["GET"]),
        Route("/dashboard/{name}", dashboard_asset, methods=["GET"]),
    ]
