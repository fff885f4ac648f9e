"""Real PostgreSQL and NATS JetStream for tests and benchmarks: the servers named by
AUTHPI_DATABASE_URL / AUTHPI_NATS_URL, else the embedded ones in a temporary directory.

The embedded NATS enforces the generated per-service credentials for every namespace (each test
has its own), so the whole suite runs on the production permissions. `nats_url` then carries the
harness's own `admin` user, so tests that publish or declare streams directly keep working, and
`nats_credentials` is the credentials file the platforms under test connect with."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from authpi.embedded.servers import EmbeddedNats, EmbeddedPostgres
from authpi.messaging import auth as nats_auth


class Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class Infra:
    dsn: str
    nats_url: str
    _stops: list[Stoppable] = field(default_factory=list[Stoppable])
    _tmp: Path | None = None
    nats_credentials: Path | None = None

    def close(self) -> None:
        for server in reversed(self._stops):
            server.stop()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def start_infra() -> Infra:
    dsn = os.environ.get("AUTHPI_DATABASE_URL") or ""
    nats_url = os.environ.get("AUTHPI_NATS_URL") or ""
    stops: list[Stoppable] = []
    tmp: Path | None = None
    creds: Path | None = None
    if not dsn or not nats_url:
        # Short path: the PostgreSQL socket lives in it (107-byte limit).
        tmp = Path(tempfile.mkdtemp(prefix="authpi-t-", dir="/tmp"))
    try:
        if not dsn:
            assert tmp is not None
            pg = EmbeddedPostgres(tmp / "pg")
            dsn = pg.start()
            stops.append(pg)
        if not nats_url:
            assert tmp is not None
            auth, creds, config = nats_auth.embedded(tmp, None)
            nats = EmbeddedNats(tmp / "nats", config=config)
            nats_url = auth.url_for(nats.start(), nats_auth.ADMIN)
            stops.append(nats)
    except BaseException:
        for server in reversed(stops):
            server.stop()
        raise
    return Infra(dsn, nats_url, stops, tmp, creds)


def new_namespace() -> str:
    """A fresh subject and schema namespace, so tests never see each other's events."""
    return f"t{uuid.uuid4().hex[:10]}"
