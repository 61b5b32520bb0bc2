"""Relay global ids and opaque pagination cursors.

A global id is ``base64url("<TypeName>:<uuid>")``. Row ids are random UUIDs, unique across
sponsors, so an id never collides between tenants; tenancy is still checked on every lookup.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import date, datetime

from db.queries.paging import Keyset, SortValue


class InvalidId(ValueError):
    """A global id or cursor that does not decode."""


def _b64encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _b64decode(text: str) -> str:
    try:
        return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidId("not a valid base64url string") from exc


def encode_global_id(type_name: str, row_id: uuid.UUID) -> str:
    """The global id of a row."""
    return _b64encode(f"{type_name}:{row_id}")


def decode_global_id(global_id: str) -> tuple[str, uuid.UUID]:
    """(type name, row id) of a global id, or InvalidId."""
    type_name, sep, raw = _b64decode(global_id).partition(":")
    if not sep or not type_name:
        raise InvalidId("not a CollabX global id")
    try:
        return type_name, uuid.UUID(raw)
    except ValueError as exc:
        raise InvalidId("not a CollabX global id") from exc


def encode_cursor(order: str, keyset: Keyset) -> str:
    """An opaque cursor naming the ordering it belongs to and the last row's keyset."""
    value: object = keyset.value
    kind = "s"
    if isinstance(value, datetime):
        value, kind = value.isoformat(), "dt"
    elif isinstance(value, date):
        value, kind = value.isoformat(), "d"
    return _b64encode(json.dumps({"o": order, "k": kind, "v": value, "i": str(keyset.id)}))


def decode_cursor(order: str, cursor: str) -> Keyset:
    """The keyset of a cursor made by :func:`encode_cursor` for the same ordering."""
    try:
        data = json.loads(_b64decode(cursor))
        if not isinstance(data, dict) or data.get("o") != order:
            raise InvalidId("the cursor belongs to another list or ordering")
        kind, raw = data["k"], data["v"]
        value: SortValue
        if kind == "dt":
            value = datetime.fromisoformat(raw)
        elif kind == "d":
            value = date.fromisoformat(raw)
        elif kind == "s" and (raw is None or isinstance(raw, str | int | float | bool)):
            value = raw
        else:
            raise InvalidId("malformed cursor")
        return Keyset(value=value, id=uuid.UUID(data["i"]))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidId):
            raise
        raise InvalidId("malformed cursor") from exc


def row_id_of(global_id: str, type_name: str) -> uuid.UUID | None:
    """The row id inside a global id of ``type_name``; None for any other or malformed id.

    Lookups answer null for such ids, exactly as for a missing object, so they never error.
    """
    try:
        found_type, row_id = decode_global_id(global_id)
    except InvalidId:
        return None
    return row_id if found_type == type_name else None
