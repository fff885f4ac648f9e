"""The people the token service learns from the directory (users, organizations, memberships),
read through `People` exactly as login, ID tokens and userinfo will: users created and changed
through the Core API (the write answers once token-users / token-organizations applied it), their
claims opened with the key from the region's PII key store, crypto-shredding on delete, the
organizations claim with its filters, and signup through the `Registry`."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from authpi.contracts.directory import OrganizationRestriction
from authpi.crypto.pii import region_store
from authpi.errors import Conflict, NotFound, Unprocessable
from authpi.platform.testing.tenants import part, schema_of
from authpi.testing.plugin import eventually
from authpi.token.reactions.people import users_channel

ALL = OrganizationRestriction()
NONE = OrganizationRestriction(mode="none")


def allowlist(*org_ids: str) -> OrganizationRestriction:
    return OrganizationRestriction(mode="allowlist", allowlist=list(org_ids))


def email() -> str:
    return f"person-{uuid.uuid4().hex[:10]}@example.com"


@pytest.fixture
def people(platform):
    return part(platform, "people", "token")


@pytest.fixture
def registry(platform):
    return part(platform, "registry", "token")


@pytest.fixture
async def admin(platform, admin_of):
    client = admin_of(platform)
    yield client
    await client.close()


@pytest.fixture
async def issuer(admin) -> str:
    return (await admin.issuers.create({"name": f"people-{uuid.uuid4().hex[:8]}"})).id


async def _verified(platform, pool, user_id: str, issuer_id: str) -> None:
    """A credentials row with a verified email, as the credentials projection writes it."""
    token = schema_of(platform, "token")
    async with pool.connection() as conn:
        await conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.credentials_view (user_id text PRIMARY KEY,"
                " issuer_id text NOT NULL, password_hash text, email_verified boolean NOT NULL"
                " DEFAULT false, updated_at bigint)"
            ).format(token)
        )
        await conn.execute(
            sql.SQL(
                "INSERT INTO {}.credentials_view (user_id, issuer_id, password_hash,"
                " email_verified, updated_at) VALUES (%s, %s, %s, true, 0)"
            ).format(token),
            [user_id, issuer_id, "$argon2id$unused"],
        )


async def test_a_core_api_user_is_in_the_token_view_with_its_claims(
    platform, pool, admin, issuer, people
):
    address = email()
    created = await admin.issuer(issuer).users.create(
        {
            "username_type": "email",
            "username": address.upper(),
            "profile": {"first_name": "Ada", "last_name": "Lovelace", "picture": "https://p/a.png",
                        "locale": "en-GB", "address": {"city": "London", "country": "GB"}},
            "custom_fields": {"department": "Analytics", "email": "spoofed@example.com"},
            "scopes": ["reports:read"],
        }
    )  # fmt: skip
    async with pool.connection() as conn:
        # No waiting: the create answered once token-users had applied it.
        user = await people.user(conn, created.id)
        assert user is not None
        assert (user.issuer_id, user.account_id, user.status) == (
            issuer, platform.account_id, "active",
        )  # fmt: skip
        assert user.username_type == "email" and user.scopes == ["reports:read"]
        assert user.created_at == created.created_at and user.updated_at is None
        directory_hash = part(platform, "users").vault.username_hash(issuer, address)
        assert user.username_hash == directory_hash == people.username_hash(issuer, address)
        assert await people.user_by_username(conn, issuer, f"  {address.title()} ") == user
        assert await people.user_by_username(conn, "i_other", address) is None

        openid = await people.claims(conn, user, ["openid"])
        assert openid == {
            "sub": created.id, "department": "Analytics",
            "created_at": created.created_at // 1000, "updated_at": created.created_at // 1000,
        }  # fmt: skip
        full = await people.claims(conn, user, ["openid", "profile", "email", "address", "phone"])
    assert full["name"] == "Ada Lovelace"
    assert (full["given_name"], full["family_name"]) == ("Ada", "Lovelace")
    assert (full["picture"], full["locale"]) == ("https://p/a.png", "en-GB")
    assert full["email"] == address and full["email_verified"] is False  # a custom field can't
    assert full["address"] == {"locality": "London", "country": "GB"}
    assert "phone_number" not in full  # none known

    await admin.issuer(issuer).users.update(
        created.id, {"profile": {"display_name": "Countess"}, "scopes": []}
    )
    await _verified(platform, pool, created.id, issuer)
    async with pool.connection() as conn:
        user = await people.user(conn, created.id)
        assert user is not None and user.scopes == [] and user.updated_at is not None
        claims = await people.claims(conn, user, ["openid", "profile", "email"])
    assert claims["name"] == "Countess" and claims["email_verified"] is True
    assert claims["updated_at"] == user.updated_at // 1000 >= claims["created_at"]


async def test_status_changes_reach_the_token_view_with_the_write(pool, admin, issuer, people):
    users = admin.issuer(issuer).users
    created = await users.create({"username_type": "email", "username": email()})
    await users.update(created.id, {"status": "suspended"})
    async with pool.connection() as conn:
        assert (await people.user(conn, created.id)).status == "suspended"
    await users.update(created.id, {"status": "active"})
    async with pool.connection() as conn:
        assert (await people.user(conn, created.id)).status == "active"


async def test_a_deleted_user_yields_no_pii(platform, pool, admin, issuer, people):
    address = email()
    users = admin.issuer(issuer).users
    created = await users.create(
        {"username_type": "email", "username": address, "profile": {"first_name": "Gone"},
         "custom_fields": {"nickname": "ghost"}}
    )  # fmt: skip
    await users.delete(created.id)

    async with pool.connection() as conn:
        user = await people.user(conn, created.id)
        assert user is not None and user.status == "deleted"
        assert await people.user_by_username(conn, issuer, address) is None
        assert await people.pii(conn, created.id) is None
        claims = await people.claims(conn, user, ["openid", "profile", "email", "address"])
        assert set(claims) == {"sub", "created_at", "updated_at"}
        # Neither the snapshot in the token's view nor the key in the region store is left.
        view = sql.SQL("SELECT pii FROM {}.users_view WHERE id = %s").format(
            schema_of(platform, "token")
        )
        assert await (await conn.execute(view, [created.id])).fetchone() == (None,)
        keys = sql.SQL("SELECT count(*) FROM {}.pii_keys WHERE subject_id = %s").format(
            sql.Identifier(region_store(platform.namespace))
        )
        assert await (await conn.execute(keys, [created.id])).fetchone() == (0,)


async def test_organizations_claim_filters(pool, admin, issuer, people):
    scope = admin.issuer(issuer)
    user_id = (await scope.users.create({"username_type": "email", "username": email()})).id
    orgs = [
        await scope.organizations.create({"name": name, "scopes": ["owner", "member"]})
        for name in ("Active", "Suspended", "Membership suspended", "Not joined")
    ]
    active, suspended, paused, _ = (o.id for o in orgs)
    added = await scope.organization(active).members.create(
        {"member_id": user_id, "user_title": "Founder", "scopes": ["owner"]}
    )
    for org_id in (suspended, paused):
        await scope.organization(org_id).members.create({"member_id": user_id})
    await scope.organizations.update(suspended, {"status": "suspended"})
    await scope.organization(paused).members.update(user_id, {"status": "suspended"})
    expected = {"id": active, "title": "Founder", "scopes": ["owner"],
                "joined_at": added.joined_at // 1000}  # fmt: skip

    async with pool.connection() as conn:
        assert await people.organizations(conn, user_id, ALL, None) == [expected]
        assert await people.organizations(conn, user_id, NONE, None) == []
        assert await people.organizations(conn, user_id, allowlist(suspended, active), None) == [
            expected
        ]
        assert await people.organizations(conn, user_id, allowlist(paused), None) == []
        assert await people.organizations(conn, user_id, ALL, active) == [expected]
        assert await people.organizations(conn, user_id, ALL, suspended) == []
        assert await people.organizations(conn, user_id, allowlist(paused), active) == []
        assert await people.is_active_member(conn, user_id, active, ALL)
        assert not await people.is_active_member(conn, user_id, active, NONE)
        assert not await people.is_active_member(conn, user_id, active, allowlist(paused))
        assert not await people.is_active_member(conn, user_id, suspended, ALL)
        assert not await people.is_active_member(conn, user_id, paused, ALL)

    # Reactivation and removal reach the token's view with the write, too.
    await scope.organizations.update(suspended, {"status": "active"})
    await scope.organization(active).members.delete(user_id)
    async with pool.connection() as conn:
        listed = await people.organizations(conn, user_id, ALL, None)
    assert [o["id"] for o in listed] == [suspended]
    assert listed[0]["title"] is None and listed[0]["scopes"] == []


async def test_a_deleted_organization_leaves_the_claim(pool, admin, issuer, people):
    scope = admin.issuer(issuer)
    user_id = (await scope.users.create({"username_type": "email", "username": email()})).id
    org = await scope.organizations.create({"name": "Short-lived"})
    await scope.organization(org.id).members.create({"member_id": user_id})
    async with pool.connection() as conn:
        assert [o["id"] for o in await people.organizations(conn, user_id, ALL, None)] == [org.id]

    await scope.organizations.delete(org.id)

    async def gone() -> bool:  # the delete cascade finishes in the background
        async with pool.connection() as conn:
            return await people.organizations(conn, user_id, ALL, None) == []

    await eventually(gone)


async def test_signup_through_the_registry(platform, pool, issuer, people, registry):
    address = email()
    record = await registry.register(
        account_id=platform.account_id, issuer_id=issuer, username_type="email",
        username=f" {address.upper()} ", profile={"first_name": "Neo"},
    )  # fmt: skip

    assert (record.issuer_id, record.account_id, record.status) == (
        issuer, platform.account_id, "active",
    )  # fmt: skip
    async with pool.connection() as conn:
        assert await people.user(conn, record.id) == record  # visible at once
        assert await people.user_by_username(conn, issuer, address) == record
        claims = await people.claims(conn, record, ["openid", "email", "profile"])
        assert (claims["email"], claims["given_name"]) == (address, "Neo")
        stored = sql.SQL(
            "SELECT data->>'method', meta->>'trigger' FROM {}.events WHERE stream_id = %s"
        ).format(schema_of(platform, "directory"))
        assert await (await conn.execute(stored, [record.id])).fetchall() == [("signup", "idp")]

    with pytest.raises(Conflict) as taken:
        await registry.register(
            account_id=platform.account_id, issuer_id=issuer, username_type="email",
            username=address, profile={},
        )  # fmt: skip
    assert taken.value.reason == "user.username"


async def test_signup_conflicts_with_a_core_api_user_and_refuses_bad_input(
    platform, admin, issuer, registry
):
    address = email()
    await admin.issuer(issuer).users.create({"username_type": "email", "username": address})
    with pytest.raises(Conflict):
        await registry.register(
            account_id=platform.account_id, issuer_id=issuer, username_type="email",
            username=address.upper(), profile={},
        )  # fmt: skip
    with pytest.raises(Unprocessable):
        await registry.register(
            account_id=platform.account_id, issuer_id=issuer, username_type="email",
            username="not-an-email", profile={},
        )  # fmt: skip
    with pytest.raises(NotFound):
        await registry.register(
            account_id=platform.account_id, issuer_id="i_unknown", username_type="email",
            username=email(), profile={},
        )  # fmt: skip


async def test_token_users_notifies_each_user_it_applies(platform, admin, issuer):
    """What signup waits on: token-users announces the id of each user it applies."""
    channel = users_channel(f"{platform.namespace}_token")
    async with await psycopg.AsyncConnection.connect(platform.dsn, autocommit=True) as listen:
        await listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        users = admin.issuer(issuer).users
        created = await users.create({"username_type": "email", "username": email()})
        await users.update(created.id, {"status": "suspended"})
        seen = [n.payload async for n in listen.notifies(timeout=10.0, stop_after=2)]
    assert seen == [created.id, created.id]
