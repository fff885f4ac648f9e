"""`authpi migrate`'s roles (platform/database.py): each service's role works in its own schema,
is refused everywhere else, cannot rewrite its events, and reaches the region's PII key store only
as far as its service needs; a process connected as a role migrates nothing and says what to run."""

from __future__ import annotations

import base64
import uuid

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import make_conninfo

from authpi.config import Settings
from authpi.platform import database
from authpi.platform.host import Platform
from authpi.platform.modules import all_modules, serving_modules
from authpi.testing.infra import new_namespace

SERVICES = [m.name for m in all_modules()]


@pytest.fixture(scope="module")
async def migrated(infra) -> str:
    """A namespace migrated by the owner, with its roles (the second run changes nothing)."""
    ns = new_namespace()
    async with await psycopg.AsyncConnection.connect(infra.dsn, autocommit=True) as conn:
        assert await database.migrate_all(conn, ns, "default", all_modules())
        await database.ensure_roles(conn, ns, "default", SERVICES, {"token": "s3cret"})
        assert await database.migrate_all(conn, ns, "default", all_modules()) == []
        await database.ensure_roles(conn, ns, "default", SERVICES, {"token": "s3cret"})
    return ns


def as_role(infra, ns: str, service: str) -> str:
    return make_conninfo(infra.dsn, user=database.service_role(ns, service))


async def run_as(infra, ns: str, service: str, query: sql.Composable, params=()):
    async with await psycopg.AsyncConnection.connect(as_role(infra, ns, service)) as conn:
        cur = await conn.execute(query, params)
        rows = await cur.fetchall() if cur.description else []
        await conn.commit()
        return rows


def table(ns: str, service: str, name: str) -> sql.Identifier:
    return sql.Identifier(f"{ns}_{service}", name)


INSERT_EVENT = (
    "INSERT INTO {} (event_id, stream_id, stream_version, type, data, meta)"
    " VALUES (%s, %s, 1, 'test.happened', '{{}}', '{{}}')"
)


@pytest.mark.parametrize("service", SERVICES)
async def test_role_reads_and_writes_its_own_schema(infra, migrated, service):
    ns = migrated
    stream = f"s_{uuid.uuid4().hex[:8]}"
    events = table(ns, service, "events")
    await run_as(infra, ns, service, sql.SQL(INSERT_EVENT).format(events), [uuid.uuid4(), stream])
    rows = await run_as(
        infra, ns, service, sql.SQL("SELECT type FROM {} WHERE stream_id = %s").format(events),
        [stream],
    )  # fmt: skip
    assert rows == [("test.happened",)]
    checkpoints = table(ns, service, "checkpoints")
    await run_as(
        infra, ns, service,
        sql.SQL("INSERT INTO {} (consumer, source, last_seq) VALUES (%s, '*', 1)").format(
            checkpoints
        ),
        [stream],
    )  # fmt: skip
    await run_as(
        infra, ns, service,
        sql.SQL("UPDATE {} SET last_seq = 2 WHERE consumer = %s").format(checkpoints), [stream],
    )  # fmt: skip
    await run_as(infra, ns, service, sql.SQL("UPDATE {} SET position = 0").format(
        table(ns, service, "relay_cursor")))  # fmt: skip


@pytest.mark.parametrize("service", SERVICES)
async def test_role_is_refused_on_other_services_tables(infra, migrated, service):
    """Refused to read or write another service's events, and to read its checkpoints unless
    the role reads that service's views (database.SHARED_READS: the token role's keyinfo)."""
    ns = migrated
    shared = set(database.SHARED_READS.get(service, ()))
    insert = sql.SQL(INSERT_EVENT)
    for other in SERVICES:
        if other == service:
            continue
        refused: list[tuple[sql.Composable, list[object]]] = [
            (sql.SQL("SELECT count(*) FROM {}").format(table(ns, other, "events")), []),
            (insert.format(table(ns, other, "events")), [uuid.uuid4(), "x"]),
            (sql.SQL("DELETE FROM {}").format(table(ns, other, "checkpoints")), []),
        ]
        if (other, "checkpoints") not in shared:
            refused.append(
                (sql.SQL("SELECT count(*) FROM {}").format(table(ns, other, "checkpoints")), [])
            )
        for query, params in refused:
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                await run_as(infra, ns, service, query, params)


@pytest.mark.parametrize("change", ["UPDATE {} SET type = 'x'", "DELETE FROM {}", "TRUNCATE {}"])
async def test_role_cannot_change_its_events(infra, migrated, change):
    query = sql.SQL(change).format(table(migrated, "directory", "events"))
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        await run_as(infra, migrated, "directory", query)


async def test_role_cannot_record_migrations(infra, migrated):
    query = sql.SQL("INSERT INTO {} (name) VALUES ('service/9999_x.sql')").format(
        table(migrated, "token", "schema_migrations")
    )
    with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
        await run_as(infra, migrated, "token", query)


async def test_pii_key_store_reached_only_as_far_as_each_service_needs(infra, migrated):
    keys = sql.Identifier(f"{migrated}_pii", "pii_keys")
    insert = sql.SQL("INSERT INTO {} (subject_id, wrapped_key) VALUES (%s, 'w')").format(keys)
    select = sql.SQL("SELECT wrapped_key FROM {} WHERE subject_id = %s").format(keys)
    delete = sql.SQL("DELETE FROM {} WHERE subject_id = %s").format(keys)
    subject = f"usr_{uuid.uuid4().hex[:10]}"
    await run_as(infra, migrated, "directory", insert, [subject])
    assert await run_as(infra, migrated, "token", select, [subject]) == [("w",)]
    for refused, query in (("token", insert), ("token", delete), ("agent", select)):
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
            await run_as(infra, migrated, refused, query, [subject])
    await run_as(infra, migrated, "directory", delete, [subject])
    assert await run_as(infra, migrated, "directory", select, [subject]) == []


async def test_token_role_reads_the_gateway_key_views_for_keyinfo_only(infra, migrated):
    views = [("api_keys_view", True), ("inactive_organizations_view", True),
             ("checkpoints", True), ("events", False), ("accounts_view", False)]  # fmt: skip
    for view, allowed in views:
        query = sql.SQL("SELECT count(*) FROM {}").format(table(migrated, "gateway", view))
        if allowed:
            assert await run_as(infra, migrated, "token", query)
        else:
            with pytest.raises(errors.InsufficientPrivilege, match="permission denied"):
                await run_as(infra, migrated, "token", query)


async def test_password_from_settings_is_set(infra, migrated):
    async with await psycopg.AsyncConnection.connect(infra.dsn) as conn:
        cur = await conn.execute(
            "SELECT rolname, rolpassword IS NOT NULL, rolcanlogin FROM pg_authid"
            " WHERE rolname LIKE %s ORDER BY rolname", [f"{migrated}\\_%"],
        )  # fmt: skip
        roles = {name: (has_password, login) for name, has_password, login in await cur.fetchall()}
    assert roles == {database.service_role(migrated, s): (s == "token", True) for s in SERVICES}


# One KEK for every process of the module's namespace, as a deployment shares one.
KEK = base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=").decode()


def role_settings(infra, ns: str, service: str, data_dir) -> Settings:
    return Settings(
        data_dir=data_dir, database_url=as_role(infra, ns, service), nats_url=infra.nats_url,
        nats_credentials_file=infra.nats_credentials, namespace=ns, kek=KEK,
    )  # fmt: skip


async def test_service_processes_run_each_service_as_its_own_role(infra, migrated, tmp_path):
    """A process connected as the token role running other services' stores beside its own
    connects each as its own role."""
    modules = [m for m in all_modules() if m.name in ("directory", "token", "gateway")]
    platform = Platform(role_settings(infra, migrated, "token", tmp_path), modules=modules,
                        serve_http=False)  # fmt: skip
    await platform.start()
    try:
        users = {}
        for name, pool in platform.pools.items():
            async with pool.connection() as conn:
                row = await (await conn.execute("SELECT current_user")).fetchone()
                users[name] = row[0] if row else None
        assert users == {m.name: database.service_role(migrated, m.name) for m in modules}
        assert all(r.running.is_set() for r in platform.relays)
    finally:
        await platform.stop()


async def test_token_process_runs_keyinfo_as_the_token_role(infra, migrated, tmp_path):
    """`authpi serve token`: the token service and the gateway's keyinfo part (which owns no
    store), both on the token role."""
    platform = Platform(role_settings(infra, migrated, "token", tmp_path),
                        modules=serving_modules("token"), serve_http=False)  # fmt: skip
    await platform.start()
    try:
        assert set(platform.pools) == {"token", "gateway"}
        assert platform.pools["gateway"] is platform.pools["token"]
    finally:
        await platform.stop()


async def test_service_role_process_does_not_migrate_and_says_what_to_run(
    infra, migrated, tmp_path
):
    applied = table(migrated, "agent", "schema_migrations")
    name = "service/0001_agents.sql"
    async with await psycopg.AsyncConnection.connect(infra.dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(applied), [name])
    agent = next(m for m in all_modules() if m.name == "agent")
    platform = Platform(role_settings(infra, migrated, "agent", tmp_path), modules=[agent],
                        serve_http=False)  # fmt: skip
    try:
        with pytest.raises(database.MigrationsMissing, match="run `authpi migrate`") as raised:
            await platform.start()
        assert name in str(raised.value)
        async with await psycopg.AsyncConnection.connect(infra.dsn) as conn:
            cur = await conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE name = %s").format(applied), [name]
            )
            assert await cur.fetchone() == (0,)  # still not applied: the process migrated nothing
    finally:
        async with await psycopg.AsyncConnection.connect(infra.dsn, autocommit=True) as conn:
            await conn.execute(sql.SQL("INSERT INTO {} (name) VALUES (%s)").format(applied), [name])
