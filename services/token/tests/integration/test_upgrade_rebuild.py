"""Upgrading to migration 0007 rebuilds token-clients: a clients_view row written before the
client entry held the human-login fields (redirect URIs and the rest) decodes with empty
defaults; the migration empties the view and the consumer's checkpoint, and the consumer rebuilds
the entry from the first event of the events stream, with every field; the later migrations
(0008's second factors, 0010's invitation views, then 0011's SSO sign-ins) apply on top in
order. Real PostgreSQL, a real
JetStream stream fed by the directory's relay, and the token-clients projection consumer."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import msgspec
from psycopg import sql

from authpi.contracts.base import Meta
from authpi.contracts.directory import ClientConfig, ClientCreated
from authpi.eventstore.migrations import migrate
from authpi.eventstore.relay import Relay
from authpi.eventstore.store import EventStore
from authpi.messaging.consumer import ProjectionConsumer
from authpi.messaging.streams import ensure_streams, jetstream
from authpi.testing.plugin import eventually, running
from authpi.token.reactions.clients import ClientEntry, clients_projection
from authpi.token.reactions.people import OrganizationsReaction
from authpi.token.service import MIGRATIONS

REBUILD = "0007_sso_rebuilds.sql"
MFA = "0008_mfa.sql"  # rebuilds token-organizations (security.mfa_required)
INVITATIONS = "0010_invitations.sql"  # token-invitations and token-approval-mail
SSO_LOGIN = "0011_sso_login.sql"  # rebuilds token-organizations again (the whole sso object)
# What a deployment before the human-login fields stored for a client.
OLD_FIELDS = ("name", "redirect_uris", "post_logout_redirect_uris", "response_types",
              "refresh_token_ttl", "id_token_ttl", "organizations")  # fmt: skip


async def _entry(pool, schema: str, client_id: str) -> ClientEntry | None:
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT data::text FROM {}.clients_view WHERE id = %s").format(
                sql.Identifier(schema)
            ),
            [client_id],
        )
        row = await cur.fetchone()
    return msgspec.json.decode(row[0], type=ClientEntry) if row else None


async def _checkpoints(pool, schema: str) -> list[str]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT DISTINCT consumer FROM {}.checkpoints ORDER BY 1").format(
                sql.Identifier(schema)
            )
        )
        return [r[0] for r in await cur.fetchall()]


async def test_the_upgrade_rebuilds_client_entries_from_the_events_stream(
    infra, pool, nc, namespace, tmp_path: Path
):
    token, directory = f"{namespace}_token", f"{namespace}_directory"
    # The migrations before the rebuild, and those up to it (later ones are not this test's).
    before, upto = tmp_path / "before", tmp_path / "upto"
    before.mkdir()
    upto.mkdir()
    for path in sorted(MIGRATIONS.glob("[0-9]*.sql")):
        if path.name < REBUILD:
            shutil.copy(path, before / path.name)
        if path.name <= REBUILD:
            shutil.copy(path, upto / path.name)
    js = jetstream(nc)
    await ensure_streams(js, namespace)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, token, before)
        await migrate(conn, directory, None)
    client_id = f"c_{uuid.uuid4().hex[:12]}"
    created = ClientCreated(
        id=client_id, issuer_id="i_upgrade", name="SPA", client_type="spa", confidential=False,
        config=ClientConfig(
            redirect_uris=["https://spa.example.com/cb"],
            post_logout_redirect_uris=["https://spa.example.com/bye"],
            grant_types=["authorization_code", "refresh_token"], response_types=["code"],
            scopes=["openid"], refresh_token_ttl=3600,
        ),
        created_at=1,
    )  # fmt: skip
    store = EventStore(pool, directory, "directory")
    async with pool.connection() as conn, conn.transaction():
        await store.load(conn, client_id)
        await store.append(conn, client_id, 0, [created], Meta(account_id="acc_upgrade"))
    relay = Relay(infra.dsn, directory, "directory", js, namespace)

    def consumer() -> ProjectionConsumer:
        return ProjectionConsumer(
            js=js, pool=pool, dsn=infra.dsn, projection=clients_projection(token),
            namespace=namespace,
        )  # fmt: skip

    async with running(relay, consumer()):
        await eventually(lambda: _entry(pool, token, client_id))
    # As the previous version wrote it: the entry without the human-login fields.
    old = sql.SQL("UPDATE {}.clients_view SET data = data - %s::text[]").format(
        sql.Identifier(token)
    )
    async with pool.connection() as conn:
        await conn.execute(old, [list(OLD_FIELDS)])
    stale = await _entry(pool, token, client_id)
    assert stale is not None and stale.redirect_uris == () and stale.name == ""
    assert "token-clients" in await _checkpoints(pool, token)

    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        assert await migrate(conn, token, upto) == [f"service/{REBUILD}"]
    assert await _entry(pool, token, client_id) is None
    assert "token-clients" not in await _checkpoints(pool, token)

    async with running(consumer()):
        rebuilt = await eventually(lambda: _entry(pool, token, client_id))
    assert rebuilt.name == "SPA"
    assert rebuilt.redirect_uris == ("https://spa.example.com/cb",)
    assert rebuilt.post_logout_redirect_uris == ("https://spa.example.com/bye",)
    assert rebuilt.response_types == ("code",) and rebuilt.refresh_token_ttl == 3600

    # The later migrations apply on top, in their numbered order.
    later = sorted(p.name for p in MIGRATIONS.glob("[0-9]*.sql") if p.name > REBUILD)
    assert later.index(MFA) < later.index(INVITATIONS) < later.index(SSO_LOGIN)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        assert await migrate(conn, token, MIGRATIONS) == [f"service/{name}" for name in later]
        assert await migrate(conn, token, MIGRATIONS) == []


def test_the_rebuilds_name_the_consumers_they_reset():
    """The migrations clear the checkpoints of the consumers by name: the names they use are the
    projections' own (0008 rebuilds token-organizations for `security.mfa_required`, 0011 for
    the whole `sso` object)."""
    text = (MIGRATIONS / REBUILD).read_text()
    for name in (clients_projection("s").name, OrganizationsReaction("s").name):
        assert f"'{name}'" in text
    for later in (MFA, SSO_LOGIN):
        assert f"'{OrganizationsReaction('s').name}'" in (MIGRATIONS / later).read_text()
