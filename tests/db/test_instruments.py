"""Instrument definitions: the JSON format's validation, loading (new, unchanged, conflicting
versions) and ``collabx instruments load`` on both backends."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from api.cli import main
from db.errors import Conflict
from db.instruments import (
    ACIC,
    InvalidInstrument,
    bundled_instruments,
    parse_definition,
    read_definition,
    resolve_definition,
)
from db.migrations import upgrade_to_head
from db.models import AuditEvent, Instrument, InstrumentItem, InstrumentVersion, Sponsor
from db.queries.instruments import load_instrument
from db.sessions import create_engine, create_sessionmaker

ACIC_JSON: dict[str, Any] = json.loads(bundled_instruments()[ACIC].read_text(encoding="utf-8"))

SMALL: dict[str, Any] = {
    "code": "mhi-lite",
    "name": "Medical Home Index (two domains)",
    "version": "1.0",
    "scale": {
        "min": 1,
        "max": 8,
        "step": 1,
        "bands": [
            {"min": 1, "max": 2, "label": "Level 1"},
            {"min": 3, "max": 4, "label": "Level 2"},
            {"min": 5, "max": 6, "label": "Level 3"},
            {"min": 7, "max": 8, "label": "Level 4"},
        ],
    },
    "missingItems": {"minAnsweredShare": 0.75},
    "sections": [
        {
            "code": "organizational-capacity",
            "title": "Domain 1: Organizational Capacity",
            "items": [{"code": "oc-mission", "label": "Mission"}],
        },
        {
            "code": "chronic-condition-management",
            "title": "Domain 2: Chronic Condition Management",
            "scale": {"min": 0, "max": 1, "bands": [{"min": 0, "max": 1, "label": "Any"}]},
            "items": [{"code": "ccm-identification", "label": "Identification of CYSHCN"}],
        },
    ],
}


def test_the_bundled_acic_is_valid_and_complete() -> None:
    definition = read_definition(bundled_instruments()[ACIC])
    assert (definition.code, definition.version, definition.item_count) == ("acic", "3.5", 34)
    assert [len(s.items) for s in definition.sections] == [6, 3, 4, 4, 6, 5, 6]
    assert resolve_definition("acic-3.5") == definition
    assert [b.label.split()[0] for b in definition.scale.bands] == [
        "Limited",
        "Basic",
        "Reasonably",
        "Fully",
    ]


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(SMALL)
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        (["code"], "Not A Code", "code"),
        (["name"], "", "name"),
        (["version"], KeyError, "$"),
        (["typo"], 1, "$"),
        (["scale", "max"], 1, "scale.max"),
        (["scale", "step"], 3, "scale.step"),
        (["scale", "bands", 0, "min"], 2, "scale.bands[0].min"),
        (["scale", "bands", 1, "min"], 2, "scale.bands[1]"),
        (["scale", "bands", 3, "max"], 9, "scale.bands[3]"),
        (["missingItems", "minAnsweredShare"], 0, "missingItems.minAnsweredShare"),
        (["sections"], [], "sections"),
        (["sections", 1, "code"], "organizational-capacity", "sections[1].code"),
        (["sections", 1, "items", 0, "code"], "oc-mission", "sections[1].items[0].code"),
        (["sections", 0, "items", 0, "label"], "a\x00b", "sections[0].items[0].label"),
        (["sections", 0, "items", 0, "weight"], 2, "sections[0].items[0]"),
        (["sections", 1, "scale", "bands"], "x", "sections[1].scale.bands"),
    ],
)
def test_invalid_definitions_name_the_place(path: list[Any], value: Any, where: str) -> None:
    with pytest.raises(InvalidInstrument) as raised:
        parse_definition(_broken(path, value))
    assert raised.value.field == where
    assert raised.value.message.startswith(f"{where}:")


def test_unreadable_files_are_invalid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInstrument, match="not JSON"):
        read_definition(bad)
    with pytest.raises(InvalidInstrument, match="bundled instrument"):
        resolve_definition(str(tmp_path / "missing.json"))


@pytest.fixture
async def sessions(empty_database_url: str) -> AsyncIterator[Any]:
    await asyncio.to_thread(upgrade_to_head, empty_database_url)
    engine = create_engine(empty_database_url, pool_size=1)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def test_a_version_loads_once_and_never_changes(sessions: Any) -> None:
    async with sessions.begin() as session:
        sponsor = Sponsor(slug="s", name="S")
        session.add(sponsor)
    definition = parse_definition(SMALL)
    async with sessions.begin() as session:
        created = await load_instrument(session, sponsor.id, definition, actor=None)
        assert created.status == "created"
    async with sessions.begin() as session:
        again = await load_instrument(session, sponsor.id, definition, actor=None)
        assert again.status == "unchanged" and again.version.id == created.version.id
    changed = copy.deepcopy(SMALL)
    changed["sections"][0]["items"][0]["label"] = "Mission statement"
    async with sessions.begin() as session:
        with pytest.raises(Conflict) as raised:
            await load_instrument(session, sponsor.id, parse_definition(changed), actor=None)
        assert raised.value.field == "version"
    changed["version"] = "1.1"
    changed["name"] = "Medical Home Index (lite)"
    async with sessions.begin() as session:
        newer = await load_instrument(session, sponsor.id, parse_definition(changed), actor=None)
        assert newer.status == "created"
    async with sessions() as session:
        versions = (await session.scalars(select(InstrumentVersion.version))).all()
        assert sorted(versions) == ["1.0", "1.1"]
        instrument = (await session.scalars(select(Instrument))).one()
        assert instrument.name == "Medical Home Index (lite)"


def _invoke(args: list[str]) -> Result:
    return CliRunner().invoke(main, args, catch_exceptions=False)


async def _cli(*args: str) -> Result:
    return await asyncio.to_thread(_invoke, list(args))


async def test_collabx_instruments_load(
    sessions: Any, empty_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLLABX_DATABASE_URL", empty_database_url)
    async with sessions.begin() as session:
        session.add_all([Sponsor(slug="alpha", name="A"), Sponsor(slug="beta", name="B")])
    result = await _cli("instruments", "load", "acic-3.5")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "alpha: acic version 3.5 created (7 sections, 34 items)",
        "beta: acic version 3.5 created (7 sections, 34 items)",
    ]
    path = tmp_path / "mhi.json"
    path.write_text(json.dumps(SMALL), encoding="utf-8")
    result = await _cli("instruments", "load", str(path), "--sponsor", "beta")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "beta: mhi-lite version 1.0 created (2 sections, 2 items)"
    result = await _cli("instruments", "load", str(path), "--sponsor", "beta")
    assert "unchanged" in result.output

    path.write_text(json.dumps(_broken(["sections", 0, "items"], [])), encoding="utf-8")
    result = await _cli("instruments", "load", str(path))
    assert result.exit_code != 0
    assert "invalid instrument: sections[0].items: must be a non-empty list" in result.output
    result = await _cli("instruments", "load", "acic-3.5", "--sponsor", "gamma")
    assert result.exit_code != 0 and "no sponsor 'gamma'" in result.output

    async with sessions() as session:
        items = await session.scalar(select(func.count()).select_from(InstrumentItem))
        assert items == 34 * 2 + 2
        events = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "instrument.load"))
        ).all()
        assert len(events) == 3 and {e.actor_client_id for e in events} == {"cli"}
