"""Settings of one CollabX process, read from the environment (prefix ``COLLABX_``).

Every variable is listed in ``.env.example``. One :class:`Settings` object is built at start-up and
passed down explicitly; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///var/collabx.db"


class Settings(BaseSettings):
    """Configuration of the service; see ``.env.example`` for what each field means."""

    model_config = SettingsConfigDict(env_prefix="COLLABX_", extra="ignore")

    database_url: str = DEFAULT_SQLITE_URL
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    debug: bool = False
    demo: bool = False
    issuer: str = Field(
        default="", description="Token issuer; defaults to http://HOST:PORT of this server."
    )
    audience: str = "collabx"
    token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    signing_alg: str = "ES256"
    external_issuer: str | None = None
    external_jwks_url: str | None = None
    external_audience: str | None = None
    external_sponsor_claim: str = "sponsor"
    metrics_token: SecretStr | None = None
    max_page_size: int = Field(default=100, ge=1, le=1000)
    max_batch_rows: int = Field(default=10_000, ge=1)
    graceful_shutdown_seconds: int = Field(default=10, ge=0)
    # `collabx serve` freezes start-up objects out of the GC and raises the gen-0 threshold
    # (api/cli.py _tune_gc): big dashboard responses otherwise spend ~40 % of CPU in the GC;
    # full collections stay frequent, so the cycles of dropped responses do not pile up.
    gc_tuning: bool = True
    # uvicorn worker processes of `collabx serve` (each with its own pool, caches and, without
    # Redis, its own rate-limit buckets); 1 = one process, no supervisor.
    workers: int = Field(default=1, ge=1, le=64)
    # Seconds a process may reuse a token's authenticated client (scopes, team bindings,
    # revocation) without reading it again; 0 (default) reads it on every request.
    auth_cache_seconds: float = Field(default=0.0, ge=0, le=60)
    # Query limits (0 switches one off); errors answer extensions.code QUERY_TOO_COMPLEX.
    max_query_depth: int = Field(default=10, ge=0)
    max_query_aliases: int = Field(default=15, ge=0)
    max_query_tokens: int = Field(default=2_000, ge=0)
    max_query_directives: int = Field(default=50, ge=0)
    max_query_cost: int = Field(default=50_000, ge=0)
    # Heavy operations (cost >= heavy_query_cost) run at most heavy_query_concurrency at a time
    # per process (api/heavy.py): bounds the memory of many big answers at once; 0: no gate.
    # Two, not one: one answer's Python work overlaps the other's wait on the database.
    heavy_query_cost: int = Field(default=200, ge=1)
    heavy_query_concurrency: int = Field(default=2, ge=0)
    heavy_query_wait_seconds: float = Field(default=30.0, gt=0)
    introspection: bool = True
    # HTTP limits: 413 beyond the body limits, 431 beyond the header limit.
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_fhir_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # Rate limits (token buckets, api/ratelimit.py): GraphQL charged by query cost per client;
    # failed token requests per client id and per IP. 429 with Retry-After when empty.
    rate_limit_enabled: bool = True
    rate_limit_capacity: int = Field(default=200_000, ge=1)
    rate_limit_refill_per_second: float = Field(default=2_000.0, gt=0)
    rate_limit_token_capacity: int = Field(default=10, ge=1)
    rate_limit_token_ip_capacity: int = Field(default=100, ge=1)
    rate_limit_token_refill_per_second: float = Field(default=0.1, gt=0)
    # Shared rate-limit buckets for several API processes (else in-process).
    redis_url: SecretStr | None = None
    redis_key_prefix: str = "collabx:rl:"
    # Log lines: one JSON object per line (default) or plain text.
    log_format: Literal["json", "text"] = "json"

    # Subscriptions over WebSocket (graphql-transport-ws on /graphql, api/subscriptions.py).
    ws_connection_init_timeout_seconds: float = Field(default=10.0, gt=0)
    ws_max_subscriptions: int = Field(default=20, ge=1)
    ws_reauth_seconds: float = Field(default=5.0, ge=0)
    # Webhooks (api/webhooks.py): SSRF protection, retries with exponential backoff.
    webhook_allow_private: bool = False
    webhook_max_attempts: int = Field(default=8, ge=1, le=30)
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_poll_seconds: float = Field(default=5.0, gt=0)
    # Maintenance (api/maintenance.py): how often expired idempotency keys are purged and changed
    # aggregate rollups refreshed; 0: never.
    maintenance_interval_seconds: float = Field(default=3600.0, ge=0)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept a comma-separated list, as an environment variable holds it."""
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("signing_alg")
    @classmethod
    def _known_alg(cls, value: str) -> str:
        if value not in ("ES256", "RS256"):
            raise ValueError("COLLABX_SIGNING_ALG must be ES256 or RS256")
        return value

    @model_validator(mode="after")
    def _default_issuer(self) -> Settings:
        """Without COLLABX_ISSUER the issuer is where this server listens."""
        if not self.issuer:
            self.issuer = f"http://{self.host}:{self.port}"
        return self

    def sqlite_path(self) -> Path | None:
        """The file of an SQLite database URL (so callers can create its folder), else None."""
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            path = self.database_url[len(prefix) :]
            return Path(path) if path and path != ":memory:" else None
        return None
