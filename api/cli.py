"""The ``collabx`` command: serve, migrate, seed, clients, keys, schema export."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings

if TYPE_CHECKING:
    from starlette.applications import Starlette
from db.enums import ALL_SCOPES, DEFAULT_SCOPES, ClientKind
from db.errors import DomainError
from db.queries.auth import ClientRecord

ResultT = TypeVar("ResultT")


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"COLLABX_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in exc.errors()
        )
        raise click.ClickException(f"invalid settings: {problems}") from exc
    sqlite_file = settings.sqlite_path()
    if sqlite_file is not None:
        sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    return settings


def _in_transaction(
    settings: Settings, work: Callable[[AsyncSession], Awaitable[ResultT]]
) -> ResultT:
    """Run ``work`` in one committed transaction on the configured database."""
    from db.sessions import create_engine, create_sessionmaker

    async def run() -> ResultT:
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            async with create_sessionmaker(engine).begin() as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException(exc.message) from exc


def _migrate(settings: Settings) -> None:
    from db.migrations import upgrade_to_head

    upgrade_to_head(settings.database_url)


@click.group()
def main() -> None:
    """CollabX: the GraphQL data exchange for learning collaboratives."""


@main.command()
@click.option("--migrate/--no-migrate", default=False, help="Migrate the database first.")
def serve(migrate: bool) -> None:
    """Run the API server (uvicorn) with the settings from the environment."""
    import uvicorn

    from api.app import create_app
    from api.demo import credentials_text, demo_clients_present
    from api.logs import log_config
    from api.subscriptions import MAX_MESSAGE_BYTES

    settings = _settings()
    if migrate:
        _migrate(settings)
    present = _in_transaction(settings, demo_clients_present)
    if present and not settings.demo:
        raise click.ClickException(
            f"demo clients exist ({', '.join(present)}) with well-known secrets; revoke them"
            " (collabx client revoke ID) or set COLLABX_DEMO=1 for a demo"
        )
    base_url = f"http://{settings.host}:{settings.port}"
    if settings.demo and present:
        click.echo(credentials_text(base_url))
    options: dict[str, Any] = dict(
        host=settings.host,
        port=settings.port,
        log_level="debug" if settings.debug else "info",
        log_config=log_config(settings.log_format, debug=settings.debug),
        access_log=False,  # api.logs.AccessLogMiddleware logs every request, without secrets
        timeout_graceful_shutdown=settings.graceful_shutdown_seconds,
        ws_max_size=MAX_MESSAGE_BYTES,
        proxy_headers=False,
    )
    if settings.workers > 1:
        # uvicorn's supervisor starts the workers (spawned: each builds its own app through
        # worker_app, with the same environment) and restarts one that dies.
        uvicorn.run("api.cli:worker_app", factory=True, workers=settings.workers, **options)
        return
    app = create_app(settings)
    if settings.gc_tuning:
        _tune_gc()
    uvicorn.run(app, **options)


def worker_app() -> Starlette:
    """The app of one uvicorn worker process (``COLLABX_WORKERS`` > 1): settings from the
    environment, as ``collabx serve`` read them, and the same GC tuning."""
    from api.app import create_app

    settings = _settings()
    app = create_app(settings)
    if settings.gc_tuning:
        _tune_gc()
    return app


def _tune_gc() -> None:
    """Keep the garbage collector off the request path of a long-running server.

    A dashboard response builds hundreds of thousands of short-lived objects (dicts, lists,
    results of every field); with CPython's default gen-0 threshold of 700 allocations the
    collector runs constantly and its gen-2 passes walk every long-lived object (the schema,
    SQLAlchemy's mappers, imported modules) — 0.2-0.5 s each, ~40 % of the server's CPU in
    the benchmark's Q1. ``gc.freeze()`` moves everything alive after start-up into a permanent
    generation the collector never scans, and a gen-0 threshold of 50,000 lets a request's
    garbage die by reference counting before a collection starts.

    The older generations are collected often (every second young collection, and a full one
    right after): a big response lives through several young collections while it is built,
    so it ends up in the oldest generation, and its cycles (execution contexts, futures) are
    freed only by a full collection — with rare ones the process grew by a response per
    request (bench: peak RSS 270 -> 176 MiB for the same CPU). Full collections stay cheap:
    they skip the frozen start-up objects, and CPython runs one only when the objects waiting
    exceed a quarter of the long-lived ones. COLLABX_GC_TUNING=0 keeps CPython's defaults.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 2, 1)


@main.command()
def migrate() -> None:
    """Upgrade the database to the newest migration."""
    settings = _settings()
    _migrate(settings)
    click.echo("database is at the newest migration")


@main.command()
@click.option("--demo", is_flag=True, required=True, help="Seed the demo data and demo clients.")
def seed(demo: bool) -> None:
    """Load demo data (idempotent) and create the demo clients."""
    from api.demo import credentials_text, ensure_demo_clients
    from db.demo import seed_demo

    settings = _settings()

    async def work(session: AsyncSession) -> str:
        summary = await seed_demo(session)
        clients = await ensure_demo_clients(session)
        if not summary.created:
            return f"demo data already present; {len(clients)} demo client(s) created"
        return (
            f"seeded {summary.sponsors} sponsors, {summary.collaboratives} collaboratives,"
            f" {summary.teams} teams, {summary.measures} measures,"
            f" {summary.data_points} data points, {summary.resources} resources,"
            f" {summary.pdsa_cycles} PDSA cycles, {summary.assessments} assessments,"
            f" {summary.survey_responses} survey responses;"
            f" {len(clients)} demo client(s) created"
        )

    click.echo(_in_transaction(settings, work))
    click.echo(credentials_text(f"http://{settings.host}:{settings.port}"))


@main.group()
def client() -> None:
    """Manage API clients."""


def _client_json(record: ClientRecord) -> dict[str, object]:
    return {
        "client_id": record.client_id,
        "kind": record.kind.value,
        "sponsor": record.sponsor_slug,
        "scopes": " ".join(record.scopes),
        "teams": len(record.team_ids),
        "created_at": record.created_at.isoformat(),
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


@client.command("create")
@click.option("--sponsor", required=True, help="Sponsor slug the client belongs to.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice([k.value for k in ClientKind], case_sensitive=False),
    help="Kind of client.",
)
@click.option("--scopes", default=None, help="Space-separated scopes (default: the kind's).")
@click.option("--team", "teams", multiple=True, help="Team code an EHR client may write for.")
@click.option("--name", default="", help="Display name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def client_create(
    sponsor: str, kind: str, scopes: str | None, teams: tuple[str, ...], name: str, as_json: bool
) -> None:
    """Create a client; prints its id and secret once (the secret is stored only hashed)."""
    from db.queries.auth import create_client

    client_kind = ClientKind(kind.upper())
    scope_list = scopes.split() if scopes is not None else list(DEFAULT_SCOPES[client_kind])
    unknown = [s for s in scope_list if s not in ALL_SCOPES]
    if unknown:
        raise click.BadParameter(
            f"unknown scope(s) {' '.join(unknown)}; known: {' '.join(ALL_SCOPES)}",
            param_hint="--scopes",
        )
    if teams and client_kind is not ClientKind.EHR_INTEGRATION:
        raise click.BadParameter(
            "only EHR_INTEGRATION clients are bound to teams", param_hint="--team"
        )

    async def work(session: AsyncSession) -> tuple[ClientRecord, str]:
        return await create_client(
            session,
            sponsor_slug=sponsor,
            kind=client_kind,
            scopes=scope_list,
            team_codes=teams,
            name=name,
        )

    record, secret = _in_transaction(_settings(), work)
    payload = {"client_id": record.client_id, "client_secret": secret}
    if as_json:
        click.echo(json.dumps(payload))
    else:
        click.echo(json.dumps(payload, indent=2))
        click.echo("Store the secret now: it cannot be shown again.", err=True)


@client.command("list")
@click.option("--sponsor", default=None, help="Only this sponsor's clients.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def client_list(sponsor: str | None, as_json: bool) -> None:
    """List clients (never their secrets)."""
    from db.queries.auth import list_clients

    async def work(session: AsyncSession) -> list[ClientRecord]:
        return list(await list_clients(session, sponsor_slug=sponsor))

    records = _in_transaction(_settings(), work)
    if as_json:
        click.echo(json.dumps([_client_json(r) for r in records], indent=2))
        return
    for record in records:
        state = "revoked" if record.revoked_at else "active"
        click.echo(
            f"{record.client_id:<32} {record.kind.value:<16} {record.sponsor_slug:<28} {state:<8}"
            f" {' '.join(record.scopes)}"
        )


@client.command("revoke")
@click.argument("client_id")
def client_revoke(client_id: str) -> None:
    """Revoke a client: its tokens stop working at once."""
    from db.queries.auth import revoke_client

    async def work(session: AsyncSession) -> ClientRecord:
        return await revoke_client(session, client_id)

    record = _in_transaction(_settings(), work)
    click.echo(f"revoked {record.client_id}")


@client.command("rotate-secret")
@click.argument("client_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def client_rotate_secret(client_id: str, as_json: bool) -> None:
    """Give a client a new secret (the old one stops working; issued tokens live on)."""
    from db.queries.auth import rotate_client_secret

    async def work(session: AsyncSession) -> tuple[ClientRecord, str]:
        return await rotate_client_secret(session, client_id)

    record, secret = _in_transaction(_settings(), work)
    click.echo(json.dumps({"client_id": record.client_id, "client_secret": secret}))


@main.group()
def keys() -> None:
    """Manage token signing keys."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Create a new signing key; old keys keep verifying until their tokens expire."""
    from api.auth.keys import rotate_keys

    settings = _settings()

    async def work(session: AsyncSession) -> str:
        return await rotate_keys(session, settings.signing_alg)

    kid = _in_transaction(settings, work)
    click.echo(f"new signing key {kid} ({settings.signing_alg})")


@main.command("purge-idempotency-keys")
def purge_idempotency_keys() -> None:
    """Delete idempotency keys past their 24 h expiry (every API process also does this each
    COLLABX_MAINTENANCE_INTERVAL_SECONDS; run this from cron when that is 0)."""
    from db.ingest import delete_expired_idempotency_keys

    removed = _in_transaction(_settings(), delete_expired_idempotency_keys)
    click.echo(f"purged {removed} expired idempotency keys")


@main.group()
def instruments() -> None:
    """Manage survey instruments (e.g. the ACIC), defined as JSON files."""


@instruments.command("load")
@click.argument("file")
@click.option(
    "--sponsor",
    "sponsors",
    multiple=True,
    help="Sponsor slug to load into (repeatable); default: every sponsor.",
)
def instruments_load(file: str, sponsors: tuple[str, ...]) -> None:
    """Load an instrument version from a JSON FILE, or a bundled one by name (acic-3.5).

    The file is validated first (errors name the JSON path). Loading a version already there
    with the same structure changes nothing; with another structure it is refused.
    """
    from db.instruments import InvalidInstrument, resolve_definition
    from db.queries.instruments import LoadOutcome, load_into_sponsors

    try:
        definition = resolve_definition(file)
    except InvalidInstrument as exc:
        raise click.ClickException(f"invalid instrument: {exc.message}") from exc

    async def work(session: AsyncSession) -> list[tuple[str, LoadOutcome]]:
        return await load_into_sponsors(session, definition, sponsors)

    for slug, outcome in _in_transaction(_settings(), work):
        click.echo(
            f"{slug}: {definition.code} version {definition.version} {outcome.status}"
            f" ({len(definition.sections)} sections, {definition.item_count} items)"
        )


@main.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sponsor", required=True, help="Slug of the sponsor the data belong to.")
@click.option("--dry-run", is_flag=True, help="Check every row; write nothing.")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 50_000),
    default=5_000,
    show_default=True,
    help="Rows per ingest call.",
)
@click.option(
    "--atomic/--no-atomic",
    default=True,
    show_default=True,
    help="One transaction for the whole file (any rejected row writes nothing), or one per "
    "batch writing its valid rows.",
)
def import_data(file: Path, sponsor: str, dry_run: bool, batch_size: int, atomic: bool) -> None:
    """Import data points from a CSV FILE with a header of team, measure, period, numerator,
    denominator, value, stratum, annotation (team, measure, period required); streamed in
    batches through the same checks as submitMeasureData. Exits 1 when rows were rejected."""
    from api.imports import CsvImportError, ImportSummary, import_csv, summary_text
    from db.sessions import create_engine, create_sessionmaker

    settings = _settings()

    async def run(advance: Callable[[int], None]) -> ImportSummary:
        engine = create_engine(settings.database_url, pool_size=1)
        try:
            return await import_csv(
                create_sessionmaker(engine),
                sponsor_slug=sponsor,
                path=file,
                dry_run=dry_run,
                atomic=atomic,
                batch_size=batch_size,
                progress=advance,
            )
        finally:
            await engine.dispose()

    with click.progressbar(length=file.stat().st_size, label="importing", file=sys.stderr) as bar:
        try:
            summary = asyncio.run(run(bar.update))
        except (CsvImportError, DomainError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(summary_text(summary, dry_run=dry_run, atomic=atomic))
    if summary.rejected:
        sys.exit(1)


@main.command("export-schema")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="File to write (default stdout).",
)
def export_schema(output: Path | None) -> None:
    """Print (or write) the GraphQL SDL."""
    from schema.sdl import sdl

    text = sdl()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
