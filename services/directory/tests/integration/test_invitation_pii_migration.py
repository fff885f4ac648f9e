"""Invitations written before their personal data was sealed (directory migration 0016): their
events carry the address, inviter and message in clear, and so did invitations_view. The
migration drops the clear columns; the start-up step (`LegacyRows`) seals each row still pending
or accepted from its events, under a new key of the invitation's own, and leaves a revoked one
unreadable; the decider folds the old events by the address's hash, so a duplicate is still
refused and the invited address still accepts."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from authpi.contracts.base import Meta
from authpi.contracts.directory import (
    OrganizationCreated,
    OrganizationInvitationAccepted,
    OrganizationInvitationCreated,
    OrganizationInvitationDeleted,
    OrganizationInvitationUpdated,
)
from authpi.crypto.envelope import Kek, new_key
from authpi.crypto.pii import MIGRATIONS as PII_MIGRATIONS
from authpi.crypto.pii import PiiVault, region_store
from authpi.directory.domain.commands.organization import AnswerInvitation, CreateInvitation, OrgRef
from authpi.directory.handlers.invitation_pii import Upcasting
from authpi.directory.projections.invitations import InvitationsView, LegacyRows
from authpi.directory.queries.invitations import InvitationQueries
from authpi.directory.service import MIGRATIONS
from authpi.errors import Conflict
from authpi.eventstore.migrations import migrate
from authpi.eventstore.store import EventStore

SEALING = "0016_invitations_sealed_pii.sql"
ADDRESSES = {"inv_1": "pending@example.com", "inv_2": "joined@example.com",
             "inv_3": "revoked@example.com"}  # fmt: skip
EXPIRES = int(time.time() * 1000) + 86_400_000
META = Meta(account_id="acc_1", issuer_id="i_1")
# What the projection wrote before migration 0016, clear columns included.
OLD_ROW = (
    "INSERT INTO {}.invitations_view (id, org_id, issuer_id, status, email_invited,"
    " user_id_invited, message, scopes, inviter, metadata, token_sha256, created_at, expires_at)"
    " VALUES (%s, 'org_1', 'i_1', %s, %s, %s, %s, '[\"member\"]', %s::jsonb, '{{}}', %s, 100, %s)"
)


def _created(invitation_id: str, message: str) -> OrganizationInvitationCreated:
    return OrganizationInvitationCreated(
        id=invitation_id, org_id="org_1", issuer_id="i_1", email_invited=ADDRESSES[invitation_id],
        inviter={"name": f"Inviter of {invitation_id}"}, message=message, scopes=["member"],
        token_sha256=invitation_id * 16, expires_at=EXPIRES, created_at=100,
    )  # fmt: skip


def _history() -> list[Any]:
    return [
        OrganizationCreated(
            id="org_1",
            issuer_id="i_1",
            account_id="acc_1",
            name="Acme",
            scopes=["member"],
            created_at=100,
        ),
        _created("inv_1", "first"),
        OrganizationInvitationUpdated(
            id="inv_1",
            org_id="org_1",
            issuer_id="i_1",
            message="second",
            scopes=["member"],
            changed=["message"],
            updated_at=110,
        ),
        _created("inv_2", "hello"),
        OrganizationInvitationAccepted(
            id="inv_2",
            org_id="org_1",
            issuer_id="i_1",
            user_id="usr_2",
            email_invited=ADDRESSES["inv_2"],
            scopes=["member"],
            accepted_at=120,
        ),
        _created("inv_3", "bye"),
        OrganizationInvitationDeleted(id="inv_3", org_id="org_1", issuer_id="i_1", revoked_at=130),
    ]


async def _written_before_sealing(pool, directory: str, store: str, tmp_path: Path) -> None:
    """The schema as it was before migration 0016, with an organization's invitations as the
    directory wrote them then: events and view rows with their personal data in clear."""
    before = tmp_path / "migrations"
    before.mkdir()
    for path in sorted(MIGRATIONS.glob("[0-9]*.sql")):
        if path.name < SEALING:
            shutil.copy(path, before / path.name)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, store, PII_MIGRATIONS, event_store=False)
        await migrate(conn, directory, before)
        async with conn.transaction():
            await EventStore(pool, directory, "directory").append(
                conn, "org_1", 0, _history(), META
            )
        rows = [("inv_1", "pending", None, "second"), ("inv_2", "accepted", "usr_2", "hello"),
                ("inv_3", "revoked", None, "bye")]  # fmt: skip
        for invitation_id, status, user_id, message in rows:
            await conn.execute(
                sql.SQL(OLD_ROW).format(sql.Identifier(directory)),
                [invitation_id, status, ADDRESSES[invitation_id], user_id, message,
                 f'{{"name": "Inviter of {invitation_id}"}}', invitation_id * 16, EXPIRES],
            )  # fmt: skip


async def _view_text(pool, directory: str) -> str:
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql.SQL("SELECT string_agg(row_to_json(i)::text, ' ') FROM {}.invitations_view i")
            .format(sql.Identifier(directory))
        )  # fmt: skip
        return str((await cur.fetchone())[0])


async def test_rows_written_before_sealing_are_sealed_at_start(pool, namespace, tmp_path: Path):
    directory, store = f"{namespace}_directory", region_store(namespace)
    await _written_before_sealing(pool, directory, store, tmp_path)
    assert "pending@example.com" in await _view_text(pool, directory)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        assert f"service/{SEALING}" in await migrate(conn, directory, MIGRATIONS)
    dropped = await _view_text(pool, directory)
    assert [a for a in ADDRESSES.values() if a in dropped] == []

    vault = PiiVault(Kek(new_key()), store)
    legacy = LegacyRows(EventStore(pool, directory, "directory"), vault)
    assert await legacy.seal() == ["inv_1", "inv_2"]  # the revoked one stays unreadable
    assert await legacy.seal() == []  # repeatable: nothing left to seal

    queries = InvitationQueries(directory, vault)
    async with pool.connection() as conn:
        shown = {
            i: (await queries.invitation(conn, "org_1", i, 0))[0] for i in ("inv_1", "inv_2")
        }  # fmt: skip
        revoked, _ = await queries.invitation(conn, "org_1", "inv_3", 0)
        assert await vault.key_for(conn, "inv_3") is None
    assert (shown["inv_1"].email_invited, shown["inv_1"].message, shown["inv_1"].status) == (
        "pending@example.com",
        "second",
        "pending",
    )
    assert shown["inv_1"].inviter == {"name": "Inviter of inv_1"}
    assert (shown["inv_2"].email_invited, shown["inv_2"].user_id_invited) == (
        "joined@example.com",
        "usr_2",
    )
    assert (revoked.email_invited, revoked.inviter, revoked.message) == ("", None, None)
    text = await _view_text(pool, directory)
    assert all(a not in text for a in ADDRESSES.values()) and "Inviter of" not in text


async def test_the_decider_folds_invitations_written_before_sealing_by_their_address_hash(
    pool, namespace, tmp_path: Path
):
    directory, store = f"{namespace}_directory", region_store(namespace)
    await _written_before_sealing(pool, directory, store, tmp_path)
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await migrate(conn, directory, MIGRATIONS)
    vault = PiiVault(Kek(new_key()), store)
    await LegacyRows(EventStore(pool, directory, "directory"), vault).seal()
    events = EventStore(
        pool, directory, "directory", projections=[InvitationsView(directory, vault)]
    )
    decider = Upcasting(vault)
    address_hash = vault.username_hash("i_1", "Pending@Example.com")

    ref = OrgRef(org_id="org_1", account_id="acc_1", issuer_id="i_1")
    again = CreateInvitation(
        ref=ref, invitation_id="inv_4", email_hash=address_hash, pii="sealed",
        scopes=["member"], token_sha256="d" * 64, expires_at=EXPIRES, now=200,
    )  # fmt: skip
    with pytest.raises(Conflict) as refused:
        await events.execute("org_1", decider, again, META)
    assert refused.value.reason == "invitation.pending_exists"

    accept = AnswerInvitation(
        org_id="org_1", invitation_id="inv_1", token_sha256="inv_1" * 16, accept=True, now=200,
        user_id="usr_1", user_email_hash=address_hash,
    )  # fmt: skip
    outcome = await events.execute("org_1", decider, accept, META)
    assert [e.type for e in outcome.events] == [
        "organization.invitation.accepted", "organization.membership.created"
    ]  # fmt: skip
    async with pool.connection() as conn:
        got, _ = await InvitationQueries(directory, vault).invitation(conn, "org_1", "inv_1", 0)
    assert (got.status, got.email_invited) == ("accepted", "pending@example.com")
