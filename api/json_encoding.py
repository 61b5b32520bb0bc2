"""Response JSON through orjson (several times faster than :mod:`json` on big documents).

orjson writes compact UTF-8 directly. What it refuses (integers beyond 64 bits, keys that are
not strings, text with a lone surrogate) falls back to :mod:`json`: compact, ASCII with escapes,
so always encodable. Values are finite here (GraphQL floats and FHIR decimals come from the
database), so orjson writing NaN as ``null`` never matters.
"""

from __future__ import annotations

import json

import orjson


def _refuse(value: object) -> object:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(data: object) -> bytes:
    """Compact UTF-8 JSON of ``data``."""
    try:
        return orjson.dumps(data, default=_refuse)
    except TypeError:
        return json.dumps(data, separators=(",", ":")).encode()
