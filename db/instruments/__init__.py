"""Survey instruments as data: the JSON format, its validation, and the instruments we ship.

One JSON file describes one version of one instrument::

    {
      "code": "acic",                      # 1-64 of a-z 0-9 . _ -, unique per sponsor
      "name": "Assessment of Chronic Illness Care",
      "description": "...",                # optional
      "version": "3.5",                    # 1-32 of A-Z a-z 0-9 . _ -
      "source": "...",                     # optional: citation, licence note
      "scale": {"min": 0, "max": 11, "step": 1,
                "bands": [{"min": 0, "max": 2, "label": "Limited support"}, ...]},
      "missingItems": {"minAnsweredShare": 0.5},   # optional, default 0.5
      "sections": [
        {"code": "organization", "title": "...", "scale": {...},   # scale optional
         "items": [{"code": "org-leadership", "label": "Organizational leadership"}, ...]}
      ]
    }

``scale`` applies to every section without a scale of its own and bands the overall score.
Bands are listed lowest first, do not overlap, lie inside the scale and the first starts at the
scale's minimum (so every score has a band). Item codes are unique in the version. Unknown keys
are errors (a typo must not silently drop a rule). :func:`parse_definition` raises
:class:`InvalidInstrument` naming the offending place, e.g. ``sections[2].items[0].code``.

Ship structure and short item labels only, never an instrument's copyrighted item text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analytics.survey_scoring import Band, Scale
from db.errors import InvalidInput

BUNDLED_DIRECTORY = Path(__file__).resolve().parent
"""Where the instruments shipped with CollabX are (package data)."""

CODE_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
NAME_MAX = 200
TITLE_MAX = 300
LABEL_MAX = 300
BAND_LABEL_MAX = 200
DESCRIPTION_MAX = 20_000
SOURCE_MAX = 2_000
MAX_SECTIONS = 100
MAX_ITEMS = 2_000
DEFAULT_MIN_ANSWERED_SHARE = 0.5


class InvalidInstrument(InvalidInput):
    """An instrument definition that does not follow the format; ``field`` is the JSON path."""


@dataclass(frozen=True)
class ItemDefinition:
    """An item: a code unique in the version and a short label."""

    code: str
    label: str


@dataclass(frozen=True)
class SectionDefinition:
    """A section (subscale) with its items; ``scale`` None uses the version's."""

    code: str
    title: str
    scale: Scale | None
    items: tuple[ItemDefinition, ...]


@dataclass(frozen=True)
class InstrumentDefinition:
    """One version of one instrument, validated."""

    code: str
    name: str
    description: str
    version: str
    source: str
    scale: Scale
    min_answered_share: float
    sections: tuple[SectionDefinition, ...]

    @property
    def item_count(self) -> int:
        """Items in every section."""
        return sum(len(section.items) for section in self.sections)

    def structure(self) -> dict[str, Any]:
        """The parts a stored version must match exactly to be "the same version"."""
        return {
            "scale": scale_to_json(self.scale),
            "min_answered_share": self.min_answered_share,
            "sections": [
                {
                    "code": section.code,
                    "title": section.title,
                    "scale": scale_to_json(section.scale) if section.scale else None,
                    "items": [[item.code, item.label] for item in section.items],
                }
                for section in self.sections
            ],
        }


def scale_to_json(scale: Scale) -> dict[str, Any]:
    """A scale as stored (``instrument_versions.scale``, ``instrument_sections.scale``)."""
    return {
        "min": scale.min,
        "max": scale.max,
        "step": scale.step,
        "bands": [{"min": b.min, "max": b.max, "label": b.label} for b in scale.bands],
    }


def scale_from_json(data: Mapping[str, Any]) -> Scale:
    """A stored scale (trusted: it was validated when loaded)."""
    return Scale(
        min=float(data["min"]),
        max=float(data["max"]),
        step=None if data.get("step") is None else float(data["step"]),
        bands=tuple(
            Band(min=float(b["min"]), max=float(b["max"]), label=str(b["label"]))
            for b in data["bands"]
        ),
    )


def _fail(path: str, message: str) -> InvalidInstrument:
    return InvalidInstrument(f"{path}: {message}", field=path)


def _object(value: Any, path: str, *, required: set[str], optional: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "must be an object")
    missing = sorted(required - value.keys())
    if missing:
        raise _fail(path, f"missing {', '.join(missing)}")
    unknown = sorted(value.keys() - required - optional)
    if unknown:
        raise _fail(path, f"unknown key(s) {', '.join(unknown)}")
    return value


def _text(value: Any, path: str, *, max_length: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise _fail(path, "must be a string")
    if "\x00" in value:
        raise _fail(path, "must not contain NUL characters")
    text = value.strip()
    if required and not text:
        raise _fail(path, "must not be empty")
    if len(text) > max_length:
        raise _fail(path, f"is longer than {max_length} characters")
    return text


def _pattern(value: Any, path: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _fail(path, f"is not a valid {what}")
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(path, "must be a finite number")
    return float(value)


def _list(value: Any, path: str, *, max_length: int) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise _fail(path, "must be a non-empty list")
    if len(value) > max_length:
        raise _fail(path, f"has more than {max_length} entries")
    return value


def _scale(value: Any, path: str) -> Scale:
    data = _object(value, path, required={"min", "max", "bands"}, optional={"step"})
    low, high = _number(data["min"], f"{path}.min"), _number(data["max"], f"{path}.max")
    if low >= high:
        raise _fail(f"{path}.max", "must be greater than min")
    step = None if data.get("step") is None else _number(data["step"], f"{path}.step")
    if step is not None:
        if step <= 0:
            raise _fail(f"{path}.step", "must be positive")
        steps = (high - low) / step
        if abs(steps - round(steps)) > 1e-9:
            raise _fail(f"{path}.step", "must divide max - min")
    bands: list[Band] = []
    for index, raw in enumerate(_list(data["bands"], f"{path}.bands", max_length=50)):
        where = f"{path}.bands[{index}]"
        band_data = _object(raw, where, required={"min", "max", "label"}, optional=set())
        band = Band(
            min=_number(band_data["min"], f"{where}.min"),
            max=_number(band_data["max"], f"{where}.max"),
            label=_text(band_data["label"], f"{where}.label", max_length=BAND_LABEL_MAX),
        )
        if not low <= band.min <= band.max <= high:
            raise _fail(where, "must lie inside the scale, min not above max")
        if bands and band.min <= bands[-1].max:
            raise _fail(where, "must start above the previous band's max (lowest band first)")
        bands.append(band)
    if bands[0].min != low:
        raise _fail(f"{path}.bands[0].min", "must equal the scale's min")
    return Scale(min=low, max=high, step=step, bands=tuple(bands))


def parse_definition(data: Any) -> InstrumentDefinition:
    """A validated definition from parsed JSON (InvalidInstrument naming the first problem)."""
    root = _object(
        data,
        "$",
        required={"code", "name", "version", "scale", "sections"},
        optional={"description", "source", "missingItems"},
    )
    share = DEFAULT_MIN_ANSWERED_SHARE
    if "missingItems" in root:
        rule = _object(
            root["missingItems"], "missingItems", required={"minAnsweredShare"}, optional=set()
        )
        share = _number(rule["minAnsweredShare"], "missingItems.minAnsweredShare")
        if not 0 < share <= 1:
            raise _fail("missingItems.minAnsweredShare", "must be above 0 and at most 1")
    sections: list[SectionDefinition] = []
    section_codes: set[str] = set()
    item_codes: set[str] = set()
    for s_index, raw in enumerate(_list(root["sections"], "sections", max_length=MAX_SECTIONS)):
        where = f"sections[{s_index}]"
        section = _object(raw, where, required={"code", "title", "items"}, optional={"scale"})
        code = _pattern(section["code"], f"{where}.code", CODE_PATTERN, "code")
        if code in section_codes:
            raise _fail(f"{where}.code", f"{code!r} is used by another section")
        section_codes.add(code)
        items: list[ItemDefinition] = []
        for i_index, raw_item in enumerate(
            _list(section["items"], f"{where}.items", max_length=MAX_ITEMS)
        ):
            item_where = f"{where}.items[{i_index}]"
            item = _object(raw_item, item_where, required={"code", "label"}, optional=set())
            item_code = _pattern(item["code"], f"{item_where}.code", CODE_PATTERN, "code")
            if item_code in item_codes:
                raise _fail(f"{item_where}.code", f"{item_code!r} is used by another item")
            item_codes.add(item_code)
            items.append(
                ItemDefinition(
                    code=item_code,
                    label=_text(item["label"], f"{item_where}.label", max_length=LABEL_MAX),
                )
            )
        sections.append(
            SectionDefinition(
                code=code,
                title=_text(section["title"], f"{where}.title", max_length=TITLE_MAX),
                scale=_scale(section["scale"], f"{where}.scale") if "scale" in section else None,
                items=tuple(items),
            )
        )
    if len(item_codes) > MAX_ITEMS:
        raise _fail("sections", f"an instrument has at most {MAX_ITEMS} items")
    return InstrumentDefinition(
        code=_pattern(root["code"], "code", CODE_PATTERN, "code"),
        name=_text(root["name"], "name", max_length=NAME_MAX),
        description=_text(
            root.get("description", ""), "description", max_length=DESCRIPTION_MAX, required=False
        ),
        version=_pattern(root["version"], "version", VERSION_PATTERN, "version"),
        source=_text(root.get("source", ""), "source", max_length=SOURCE_MAX, required=False),
        scale=_scale(root["scale"], "scale"),
        min_answered_share=share,
        sections=tuple(sections),
    )


def bundled_instruments() -> dict[str, Path]:
    """The instrument files shipped with CollabX, by file name without ``.json``."""
    return {path.stem: path for path in sorted(BUNDLED_DIRECTORY.glob("*.json"))}


def read_definition(path: Path) -> InstrumentDefinition:
    """Parse and validate an instrument file (InvalidInstrument for bad JSON or content)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInstrument(f"{path}: not UTF-8 text", field="$") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInstrument(
            f"{path}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", field="$"
        ) from exc
    return parse_definition(data)


ACIC = "acic-3.5"
"""The bundled ACIC v3.5 structure (7 subscales, 34 items, 0-11 scale)."""


def resolve_definition(name_or_path: str) -> InstrumentDefinition:
    """The definition in a JSON file, or of a bundled instrument by name (e.g. ``acic-3.5``)
    when no such file exists; InvalidInstrument otherwise."""
    path = Path(name_or_path)
    if not path.is_file():
        bundled = bundled_instruments()
        if name_or_path not in bundled:
            names = ", ".join(bundled) or "none"
            raise InvalidInstrument(
                f"{name_or_path}: no such file, nor a bundled instrument ({names})", field="$"
            )
        path = bundled[name_or_path]
    return read_definition(path)
