"""The database of a deployment: every schema's migrations, run once as the database owner
(`authpi migrate`; `authpi up` runs them itself), one LOGIN role per service with rights on its
own schema only, and what a service process connected as its own role does instead of migrating:
it checks that the migrations are applied and says what to run when they are not.

Roles are named like the schemas, `<namespace>_<service>`. What each role may do, and why:

- its own schema: USAGE; SELECT, INSERT, UPDATE, DELETE and TRUNCATE on its tables (projections,
  consumers' checkpoints and dead letters, reservations, the relay cursor; TRUNCATE is a
  projection's reset when it is replayed); USAGE and SELECT on its sequences (identity columns);
- but on its `events` only SELECT and INSERT (append-only, STYLE.md 7; the trigger refuses the
  rest even to the owner), and on its `schema_migrations` only SELECT (the start-up check);
- the region's PII key store (crypto/pii.py): the directory SELECT, INSERT, DELETE on `pii_keys`
  (it creates a user's or an invitation's key and shreds it), the token service SELECT (it opens
  the sealed snapshots it projects); both SELECT on its `schema_migrations`. No other service.

- the token service SELECT on the gateway's `api_keys_view` and `inactive_organizations_view`,
  on its `checkpoints` (a cache loads a view with the checkpoint of the consumer that feeds it,
  then follows the stream from there) and its `schema_migrations` (the start-up check): the
  token process serves the IdP port's keyinfo itself (the gateway's KEYINFO part), checking API
  keys against those views.

Nothing else crosses schemas: a consumer's checkpoints and dead letters live in the consumer's
own schema, and other services' events reach it over NATS, never by reading their tables.
Operator commands that read every schema (`authpi replay`, `authpi kek rotate`,
`authpi dead-letters`) run as the owner, like `authpi migrate`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, LiteralString

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from authpi.crypto.pii import MIGRATIONS as PII_MIGRATIONS
from authpi.crypto.pii import region_store
from authpi.eventstore.migrations import migrate, missing_migrations
from authpi.platform.kek import PII_READERS
from authpi.web.runtime import ServiceModule

# What a service's role may do on the region's PII key store (see the module docstring).
PII_RIGHTS: dict[str, LiteralString] = {"directory": "SELECT, INSERT, DELETE", "token": "SELECT"}
assert set(PII_RIGHTS) == set(PII_READERS)
# Other services' tables a service's role reads (see the module docstring): service -> (owner,
# table) pairs.
SHARED_READS: dict[str, tuple[tuple[str, str], ...]] = {
    "token": (
        ("gateway", "api_keys_view"),
        ("gateway", "inactive_organizations_view"),
        ("gateway", "checkpoints"),
        ("gateway", "schema_migrations"),
    ),
}


def service_role(namespace: str, service: str) -> str:
    return f"{namespace}_{service}"


class MigrationsMissing(RuntimeError):
    pass


async def migrate_all(
    conn: psycopg.AsyncConnection[Any],
    namespace: str,
    region: str,
    modules: Sequence[ServiceModule],
) -> list[str]:
    """The region's PII key store first: the services' migrations may move keys into it (they
    find it by the session setting `authpi.pii_store`). Returns `<schema>:<migration>` applied."""
    store = region_store(namespace, region)
    applied = [
        f"{store}:{n}" for n in await migrate(conn, store, PII_MIGRATIONS, event_store=False)
    ]
    await conn.execute("SELECT set_config('authpi.pii_store', %s, false)", [store])
    for module in modules:
        schema = f"{namespace}_{module.name}"
        applied += [f"{schema}:{n}" for n in await migrate(conn, schema, module.migrations)]
    await conn.execute("RESET authpi.pii_store")
    return applied


async def ensure_roles(
    conn: psycopg.AsyncConnection[Any],
    namespace: str,
    region: str,
    services: Sequence[str],
    passwords: Mapping[str, str],
) -> None:
    """Create (once) each service's LOGIN role and grant it exactly its rights; a password given
    for a service is set each time. Idempotent, and serialised like the migrations."""
    store = sql.Identifier(region_store(namespace, region))
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('authpi.roles'))")
        for service in services:
            name = service_role(namespace, service)
            role, schema = sql.Identifier(name), sql.Identifier(f"{namespace}_{service}")
            cur = await conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
            if await cur.fetchone() is None:
                await conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
            password = passwords.get(service)
            if password:
                await conn.execute(
                    sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password))
                )
            for statement in _grants(schema, role):
                await conn.execute(statement)
            rights = PII_RIGHTS.get(service)
            if rights is not None:
                for statement in _pii_grants(store, role, rights):
                    await conn.execute(statement)
            for owner, table in SHARED_READS.get(service, ()):
                other = sql.Identifier(f"{namespace}_{owner}")
                await conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(other, role))
                await conn.execute(
                    sql.SQL("GRANT SELECT ON {} TO {}").format(
                        sql.Identifier(f"{namespace}_{owner}", table), role
                    )
                )


def _grants(schema: sql.Identifier, role: sql.Identifier) -> list[sql.Composed]:
    return [sql.SQL(text).format(s=schema, r=role) for text in OWN_SCHEMA]


# A service role's rights on its own schema, in this order (see the module docstring).
OWN_SCHEMA: tuple[LiteralString, ...] = (
    "GRANT USAGE ON SCHEMA {s} TO {r}",
    "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {s} TO {r}",
    "REVOKE UPDATE, DELETE, TRUNCATE ON {s}.events FROM {r}",
    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.schema_migrations FROM {r}",
    "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r}",
)


def _pii_grants(store: sql.Identifier, role: sql.Identifier, rights: str) -> list[sql.Composed]:
    return [
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(store, role),
        sql.SQL("GRANT {} ON {}.pii_keys TO {}").format(sql.SQL(rights), store, role),
        sql.SQL("GRANT SELECT ON {}.schema_migrations TO {}").format(store, role),
    ]


async def own_service(
    pool: AsyncConnectionPool, namespace: str, services: Sequence[str]
) -> str | None:
    """The service whose role the pool connects as; None for any other role (the owner)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT current_user")
        row = await cur.fetchone()
    user = row[0] if row else ""
    return next((s for s in services if service_role(namespace, s) == user), None)


def service_dsn(dsn: str, namespace: str, service: str, passwords: Mapping[str, str]) -> str:
    """`dsn` connecting as `service`'s role instead, with its password when one is given (a
    process whose AUTHPI_DATABASE_URL names one service's role, running others beside it)."""
    extra = {"user": service_role(namespace, service)}
    if service in passwords:
        extra["password"] = passwords[service]
    return make_conninfo(dsn, **extra)


async def check_applied(
    pools: Mapping[str, AsyncConnectionPool],
    namespace: str,
    region: str,
    modules: Sequence[ServiceModule],
) -> None:
    """Every migration of every module here (and of the region store, when one of them reads it)
    is applied; else MigrationsMissing, saying what to run."""
    missing: list[str] = []
    for module in modules:
        schema = f"{namespace}_{module.name}"
        async with pools[module.name].connection() as conn:
            missing += [
                f"{schema}:{n}" for n in await missing_migrations(conn, schema, module.migrations)
            ]
    reader = next((s for s in PII_READERS if s in pools), None)
    if reader is not None:
        store = region_store(namespace, region)
        async with pools[reader].connection() as conn:
            pending = await missing_migrations(conn, store, PII_MIGRATIONS, event_store=False)
        missing += [f"{store}:{n}" for n in pending]
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise MigrationsMissing(
            f"the database is not migrated ({shown} not applied): run `authpi migrate` with "
            "AUTHPI_DATABASE_URL naming the database owner, then start this service again"
        )
