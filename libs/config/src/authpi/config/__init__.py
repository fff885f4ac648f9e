"""Typed settings for every AuthPI process, parsed once from `AUTHPI_*` environment variables."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path
    database_url: str | None = None
    nats_url: str | None = None
    api_url: str = "http://127.0.0.1:8000"
    idp_url: str = "http://127.0.0.1:8001"
    # Base64 (urlsafe) 32-byte key-encryption key; generated into data_dir when unset.
    kek: str | None = None
    log_format: str = "auto"  # auto | json | console
    log_level: str = "info"
    # Subject and schema namespace: lets many deployments (or test runs) share one NATS/PostgreSQL.
    namespace: str = "authpi"
    region: str = "default"
    # Scales the Core API rate limits (core-api.md 2.5); load tests and CI raise it.
    rate_limit_multiplier: float = 1.0

    @property
    def bootstrap_path(self) -> Path:
        return self.data_dir / "bootstrap.json"


def from_env(env: dict[str, str] | None = None) -> Settings:
    e = os.environ if env is None else env
    data_dir = Path(e.get("AUTHPI_DATA_DIR") or Path.cwd() / ".authpi").absolute()
    return Settings(
        data_dir=data_dir,
        database_url=e.get("AUTHPI_DATABASE_URL") or None,
        nats_url=e.get("AUTHPI_NATS_URL") or None,
        api_url=(e.get("AUTHPI_API_URL") or "http://127.0.0.1:8000").rstrip("/"),
        idp_url=(e.get("AUTHPI_IDP_URL") or "http://127.0.0.1:8001").rstrip("/"),
        kek=e.get("AUTHPI_KEK") or None,
        log_format=e.get("AUTHPI_LOG_FORMAT", "auto"),
        log_level=e.get("AUTHPI_LOG_LEVEL", "info"),
        namespace=e.get("AUTHPI_NAMESPACE", "authpi"),
        region=e.get("AUTHPI_REGION", "default"),
        rate_limit_multiplier=float(e.get("AUTHPI_RATE_LIMIT_MULTIPLIER", "1")),
    )
