"""Real PostgreSQL and NATS JetStream for tests and benchmarks: the servers named by
AUTHPI_DATABASE_URL / AUTHPI_NATS_URL, else the embedded ones in a temporary directory.

The embedded NATS enforces the generated per-service credentials for every namespace (each test
has its own), so the whole suite runs on the production permissions. `nats_url` then carries the
harness's own `admin` user, so tests that publish or declare streams directly keep working, and
`nats_credentials` is the credentials file the platforms under test connect with."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from authpi.embedded.servers import EmbeddedNats, EmbeddedPostgres
from authpi.messaging import auth as nats_auth


@dataclass
class Infra:
    dsn: str
    nats_url: str
    _stops: list[Callable[[], None]] = field(default_factory=list[Callable[[], None]])
    _tmp: Path | None = None
    nats_credentials: Path | None = None

    def close(self) -> None:
        for stop in reversed(self._stops):
            stop()
        if self._tmp is not None:
            remove_tree(self._tmp)


def remove_tree(path: Path, threads: int = 8) -> None:
    """Delete a throwaway directory tree, its files unlinked by several threads at once: after a
    whole suite the embedded PostgreSQL holds tens of thousands of relation files, and one
    unlink after another waits on the disk for each."""
    files: list[str] = []
    for parent, _, names in os.walk(path):
        files.extend(os.path.join(parent, name) for name in names)

    def unlink(chunk: list[str]) -> None:
        for file in chunk:
            with contextlib.suppress(OSError):
                os.unlink(file)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(unlink, [files[i::threads] for i in range(threads)]))
    shutil.rmtree(path, ignore_errors=True)  # the directories (and anything left)


def start_infra() -> Infra:
    dsn = os.environ.get("AUTHPI_DATABASE_URL") or ""
    nats_url = os.environ.get("AUTHPI_NATS_URL") or ""
    stops: list[Callable[[], None]] = []
    tmp: Path | None = None
    creds: Path | None = None
    if not dsn or not nats_url:
        # Short path: the PostgreSQL socket lives in it (107-byte limit).
        tmp = Path(tempfile.mkdtemp(prefix="authpi-t-", dir="/tmp"))
    try:
        if not dsn:
            assert tmp is not None
            pg = EmbeddedPostgres(tmp / "pg", durable=False)  # deleted afterwards
            dsn = pg.start()
            stops.append(pg.discard)  # the data directory is deleted with `tmp`
        if not nats_url:
            assert tmp is not None
            auth, creds, config = nats_auth.embedded(tmp, None)
            nats = EmbeddedNats(tmp / "nats", config=config)
            nats_url = auth.url_for(nats.start(), nats_auth.ADMIN)
            stops.append(nats.stop)
    except BaseException:
        for stop in reversed(stops):
            stop()
        raise
    return Infra(dsn, nats_url, stops, tmp, creds)


def new_namespace() -> str:
    """A fresh subject and schema namespace, so tests never see each other's events."""
    return f"t{uuid.uuid4().hex[:10]}"
