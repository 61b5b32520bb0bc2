"""Which webhook URLs CollabX will POST to: http(s) to public addresses only (SSRF protection).

A webhook makes the server send requests to an address a client chose, so a URL could aim at
the server's own network: a cloud metadata service (169.254.169.254), a database port on
localhost, an internal admin page. Every URL is therefore checked when the webhook is created and
again before every attempt (DNS may change meanwhile):

* scheme ``http`` or ``https``, a host, no user name or password, no fragment, 2,000 characters
  at most, no whitespace or control characters;
* every address the host resolves to must be globally routable: loopback, private (RFC 1918,
  ULA), link-local, shared (100.64/10), multicast, reserved and unspecified addresses are refused —
  unless ``COLLABX_WEBHOOK_ALLOW_PRIVATE=1`` (tests, or a deployment whose partners are on its
  own network);
* redirects are not followed (a 3xx answer is a failed attempt), so a public URL cannot bounce a
  delivery inward.

What remains: a host whose DNS answer changes between the check and the connection (DNS
rebinding) could still reach an inner address for that one request; deployments that must rule
this out send webhooks through an egress proxy or firewall that enforces the same rule.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from db.errors import InvalidInput
from db.models.webhooks import URL_LENGTH


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def url_shape_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook URL, judging the text alone; None when it can."""
    if len(url) > URL_LENGTH:
        return f"a webhook URL is at most {URL_LENGTH} characters"
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "a webhook URL has no spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "a webhook URL starts with http:// or https://"
    if not parts.hostname:
        return "a webhook URL names a host"
    if parts.username is not None or parts.password is not None:
        return "a webhook URL carries no user name or password (the signature authenticates)"
    if parts.fragment or url.endswith("#"):
        return "a webhook URL has no fragment (#...)"
    if port == 0:
        return "port 0 is not a port"
    return None


async def url_address_problem(url: str, *, allow_private: bool) -> str | None:
    """Why the server must not POST to ``url`` now (its host resolves to a non-public address,
    or not at all); None when it may."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError):
            return f"the host {host!r} does not resolve"
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            return f"the host {host!r} does not resolve"
    if allow_private:
        return None
    refused = [str(a) for a in addresses if not _public(a)]
    if refused:
        return (
            f"the host {host!r} resolves to a non-public address ({refused[0]}); webhooks go to "
            "public addresses only"
        )
    return None


async def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """``url`` when CollabX may POST to it, else InvalidInput on the ``url`` field."""
    if "\x00" in url:
        raise InvalidInput("text must not contain NUL bytes", field="url")
    problem = url_shape_problem(url) or await url_address_problem(url, allow_private=allow_private)
    if problem is not None:
        raise InvalidInput(problem, field="url")
    return url
