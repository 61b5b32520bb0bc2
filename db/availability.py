"""Which exceptions mean "the database is unreachable right now" (retry later), not a bug.

The edge answers these with 503 and ``Retry-After`` and GraphQL with ``extensions.code =
"SERVICE_UNAVAILABLE"`` instead of masking them as unexpected errors: a client whose connection
was killed in the middle of a batch may retry (with the same idempotency key), because the
transaction was rolled back with the connection. Observed with asyncpg:

* a connection killed by ``pg_terminate_backend`` or a restart: ``DBAPIError`` with
  ``connection_invalidated`` (SQLSTATE 08003/08006, 57P01-57P03);
* a server that does not listen: the driver's own ``ConnectionRefusedError`` (SQLAlchemy does
  not wrap it);
* a pool that has no connection to give within its timeout: ``sqlalchemy.exc.TimeoutError``.
"""

from __future__ import annotations

import socket

from sqlalchemy import exc as sa_exc

UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
"""admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections (and class 08)."""


def _sqlstate(error: BaseException) -> str:
    original = getattr(error, "orig", None)
    state = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    return state if isinstance(state, str) else ""


def is_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) says the database cannot be reached now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.TimeoutError):
            return True
        if isinstance(current, sa_exc.DBAPIError):
            state = _sqlstate(current)
            if current.connection_invalidated or state.startswith("08"):
                return True
            if state in UNAVAILABLE_SQLSTATES:
                return True
        if isinstance(current, ConnectionError | TimeoutError | socket.gaierror):
            return True
        current = current.__cause__ or current.__context__
    return False
