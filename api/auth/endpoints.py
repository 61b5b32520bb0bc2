"""OAuth 2.0 endpoints: the client-credentials token endpoint (RFC 6749 §4.4, errors per §5.2),
the JWKS and the authorization-server metadata (RFC 8414)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse

from api.auth.tokens import ALLOWED_ALGORITHMS, issue_token
from api.demo import DEMO_CLIENT_IDS
from api.state import AppState
from db.enums import ALL_SCOPES
from db.queries.auth import get_client_by_client_id, verify_secret

MAX_FORM_BYTES = 8 * 1024
MAX_CREDENTIAL_LENGTH = 256
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> JSONResponse:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="collabx", charset="UTF-8"'
        return JSONResponse(
            {"error": self.error, "error_description": self.description},
            status_code=self.status,
            headers=headers,
        )


async def _form(request: Request) -> dict[str, str]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise OAuthError("invalid_request", f"the body exceeds {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OAuthError("invalid_request", "the body is not valid form data") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthError("invalid_request", f"parameter {name!r} is repeated")
        if "\x00" in value:
            raise OAuthError("invalid_request", f"parameter {name!r} contains a NUL byte")
        form[name] = value
    return form


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization")
    in_body = "client_id" in form or "client_secret" in form
    if header is not None:
        if in_body and "client_secret" in form:
            raise OAuthError("invalid_request", "use one client authentication method, not two")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "use HTTP Basic client authentication", 401)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "malformed Basic credentials", 401)
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        credentials = unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    elif "client_id" not in form or "client_secret" not in form:
        raise OAuthError("invalid_client", "client authentication is required", 401)
    else:
        credentials = form["client_id"], form["client_secret"]
    if any("\x00" in part or len(part) > MAX_CREDENTIAL_LENGTH for part in credentials):
        raise OAuthError("invalid_client", "malformed client credentials", 401)
    return credentials


async def token_endpoint(request: Request) -> JSONResponse:
    """POST /oauth/token — client credentials grant."""
    state: AppState = request.app.state.collabx
    try:
        form = await _form(request)
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required")
        client_id, secret = _client_credentials(request, form)
        if grant_type != "client_credentials":
            raise OAuthError(
                "unsupported_grant_type", "only the client_credentials grant is supported"
            )
        async with state.sessionmaker() as session:
            client = await get_client_by_client_id(session, client_id)
        # Verify against a dummy hash for unknown clients so timing does not reveal which exist.
        stored = client.secret_hash if client is not None else _DUMMY_HASH
        if not verify_secret(secret, stored) or client is None:
            raise OAuthError("invalid_client", "unknown client or wrong secret", 401)
        if client.revoked_at is not None:
            raise OAuthError("invalid_client", "the client has been revoked", 401)
        if client.client_id in DEMO_CLIENT_IDS and not state.settings.demo:
            raise OAuthError("invalid_client", "demo clients only work in demo mode", 401)
        if "scope" in form:
            requested = form["scope"].split()
            unknown = [s for s in requested if s not in ALL_SCOPES]
            if unknown:
                raise OAuthError("invalid_scope", f"unknown scope(s): {' '.join(unknown)}")
            not_granted = [s for s in requested if s not in client.scopes]
            if not_granted:
                raise OAuthError(
                    "invalid_scope",
                    f"scope(s) not granted to this client: {' '.join(not_granted)}",
                )
            if not requested:
                raise OAuthError("invalid_scope", "scope is empty")
            scopes = [s for s in client.scopes if s in requested]
        else:
            scopes = list(client.scopes)
    except OAuthError as error:
        return error.response()
    settings = state.settings
    issued = await issue_token(
        state.keys,
        issuer=settings.issuer,
        audience=settings.audience,
        ttl=settings.token_ttl_seconds,
        client_id=client.client_id,
        sponsor_slug=client.sponsor_slug,
        scopes=scopes,
    )
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        },
        headers=NO_STORE,
    )


_DUMMY_HASH = "sha256$00000000000000000000000000000000$" + "0" * 64


async def jwks_endpoint(request: Request) -> JSONResponse:
    """GET /.well-known/jwks.json — the public keys that verify our tokens."""
    state: AppState = request.app.state.collabx
    return JSONResponse(await state.keys.jwks(), headers={"Cache-Control": "max-age=60"})


async def metadata_endpoint(request: Request) -> JSONResponse:
    """GET /.well-known/oauth-authorization-server — RFC 8414 metadata."""
    state: AppState = request.app.state.collabx
    issuer = state.settings.issuer.rstrip("/")
    document: dict[str, Any] = {
        "issuer": state.settings.issuer,
        "token_endpoint": f"{issuer}/oauth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "scopes_supported": list(ALL_SCOPES),
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALLOWED_ALGORITHMS),
    }
    return JSONResponse(document)
