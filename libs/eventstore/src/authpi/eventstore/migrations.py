"""Forward-only SQL migrations per service schema: the event-store base, then the service's own
numbered files. Each file runs once, in its own transaction, recorded in `schema_migrations`.
A schema that holds no events (the region's PII key store) takes its own files only."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import psycopg
from psycopg import errors, sql

from authpi.eventstore.sqltext import render

BASE_DIR = Path(str(resources.files("authpi.eventstore") / "sql"))


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))


async def migrate(
    conn: psycopg.AsyncConnection,
    schema: str,
    service_dir: Path | None,
    *,
    event_store: bool = True,
) -> list[str]:
    """Apply pending migrations to `schema`; return the names applied. Serialised by an advisory
    lock so that concurrent starters are harmless. `event_store=False`: no event-store base."""
    applied: list[str] = []
    plan = [("eventstore", f) for f in _files(BASE_DIR)] if event_store else []
    if service_dir is not None and service_dir.exists():
        plan += [("service", f) for f in _files(service_dir)]
    async with conn.transaction():
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('authpi.migrate:' || %s))", [schema]
        )
        await conn.execute(render("CREATE SCHEMA IF NOT EXISTS {schema}", schema=schema))
        await conn.execute(
            render(
                "CREATE TABLE IF NOT EXISTS {schema}.schema_migrations"
                " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                schema=schema,
            )
        )
        cur = await conn.execute(
            render("SELECT name FROM {schema}.schema_migrations", schema=schema)
        )
        done = {row[0] for row in await cur.fetchall()}
        for kind, path in plan:
            name = f"{kind}/{path.name}"
            if name in done:
                continue
            await conn.execute(render("SET LOCAL search_path TO {schema}", schema=schema))
            await conn.execute(path.read_text())  # type: ignore[arg-type]
            await conn.execute(
                render("INSERT INTO {schema}.schema_migrations (name) VALUES (%s)", schema=schema),
                [name],
            )
            applied.append(name)
    return applied


async def missing_migrations(
    conn: psycopg.AsyncConnection,
    schema: str,
    service_dir: Path | None,
    *,
    event_store: bool = True,
) -> list[str]:
    """The migrations of `schema` not applied yet (none applied when the schema or its
    `schema_migrations` is missing, or cannot be read). A process that does not migrate (an IdP
    worker, a service connected as its own role) refuses to start on a non-empty answer."""
    wanted = [f"eventstore/{p.name}" for p in _files(BASE_DIR)] if event_store else []
    if service_dir is not None and service_dir.exists():
        wanted += [f"service/{p.name}" for p in _files(service_dir)]
    try:
        async with conn.transaction():
            cur = await conn.execute(
                sql.SQL("SELECT name FROM {}.schema_migrations").format(sql.Identifier(schema))
            )
            done: set[str] = {row[0] for row in await cur.fetchall()}
    except (errors.UndefinedTable, errors.InvalidSchemaName, errors.InsufficientPrivilege):
        done = set[str]()
    return [n for n in wanted if n not in done]
