"""Users over the Core API (core-api.md 3.9) with the official SDK: CRUD, statuses, paging,
preconditions, refusals, tenant isolation, scopes, and crypto-shredding on delete (DESIGN.md 7)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from authpi_admin.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)

from authpi.crypto.ids import sha256_hex
from authpi.testing.plugin import eventually

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


def email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def users_url(platform, issuer: str) -> str:
    return f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}/users"


async def replays_holding(platform, kit, needle: str) -> list[str]:
    """The Idempotency-Keys of the account whose stored replay (sealed under the user's replay
    key, so invisible to the raw scan) holds `needle` once opened."""
    store = kit.part(platform, "gateway").idempotency
    bodies = await store.replay_bodies(platform.account_id)
    return sorted(key for key, body in bodies if needle.encode() in body)


async def test_deleted_user_leaves_no_clear_email_or_profile_anywhere(
    platform, pool, kit, admin, issuer
):
    address = f"shred-{uuid.uuid4().hex}@example.com"
    marker = f"Zq{uuid.uuid4().hex}"
    users = admin.issuer(issuer).users
    create_key, update_key = f"create-{uuid.uuid4().hex}", f"update-{uuid.uuid4().hex}"
    created = await users.create(
        {
            "username_type": "email",
            "username": address,
            "profile": {"first_name": marker, "last_name": "Smith"},
            "custom_fields": {"nickname": marker + "-nick"},
        },
        idempotency_key=create_key,
    )
    await users.update(
        created.id,
        {"profile": {"display_name": marker + " Smith"}},
        idempotency_key=update_key,
    )
    # Both requests left a replay in the gateway's schema that holds the email and profile.
    assert await replays_holding(platform, kit, address) == sorted([create_key, update_key])
    assert await replays_holding(platform, kit, marker) == sorted([create_key, update_key])
    # The raw scan covers the gateway's schema: it finds the records by their key.
    assert await kit.places_holding(platform, pool, create_key) == [
        f"{platform.namespace}_gateway.idempotency_keys.key"
    ]
    # No table holds a clear value even while the user exists: the users view keeps the sealed
    # snapshot and decrypts on read.
    assert await kit.places_holding(platform, pool, address) == []
    assert await kit.places_holding(platform, pool, marker) == []
    got = await users.get(created.id)
    assert got.username == address.lower() and got.profile["display_name"] == marker + " Smith"

    await users.delete(created.id)

    # The gateway learns the deletion from `user.deleted` and purges those replays.
    async def replays_purged() -> bool:
        return await replays_holding(platform, kit, address) == [] and (
            await replays_holding(platform, kit, marker) == []
        )

    await eventually(replays_purged, timeout=10.0)
    assert await kit.places_holding(platform, pool, create_key) == []
    assert await kit.places_holding(platform, pool, update_key) == []
    assert await kit.places_holding(platform, pool, address) == []
    assert await kit.places_holding(platform, pool, marker) == []
    assert await kit.events_of(platform, pool, created.id) == [
        "user.created",
        "user.updated",
        "user.deleted",
    ]
    vault = kit.part(platform, "users").vault
    async with pool.connection() as conn:
        assert await vault.key_for(conn, created.id) is None


async def test_events_carry_only_sealed_pii(platform, pool, kit, admin, issuer):
    address = email()
    created = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": address, "profile": {"first_name": "Ada"}}
    )
    places = await kit.places_holding(platform, pool, address)
    assert not [p for p in places if p.endswith(".events.data")]
    index = [u async for u in admin.issuer(issuer).users.list_all() if u.user_id == created.id]
    assert index[0].username_hash not in ("", address)
    assert index[0].region == "default" and index[0].store_id == "default"


@pytest.mark.sdk(quick=True)
async def test_sdk_crud_with_auto_pagination(platform, admin, issuer):
    users = admin.issuer(issuer).users
    made = [
        await users.create(
            {"username_type": "email", "username": email(), "profile": {"first_name": f"U{i}"}}
        )
        for i in range(7)
    ]
    listed = [u async for u in users.list_all(limit=3)]
    assert [u.user_id for u in listed] == [u.id for u in reversed(made)]  # newest first
    first = await users.list(limit=3)
    assert first.has_more and first.next_cursor and len(first.data) == 3

    got = await admin.issuer(issuer).user(made[0].id).get()
    assert got.profile == {"first_name": "U0"} and got.username_type == "email"
    updated = await users.update(
        got.id,
        {"profile": {"display_name": "Bob"}, "metadata": {"crm": "42"}},
        if_match=got._etag,
    )
    assert updated.profile == {"first_name": "U0", "display_name": "Bob"}
    assert updated.metadata.model_dump() == {"crm": "42"} and updated.updated_at is not None
    assert (await users.get(got.id)).profile["display_name"] == "Bob"  # read after write

    await users.delete(got.id)
    with pytest.raises(NotFoundError):
        await users.get(got.id)
    remaining = [u.user_id async for u in users.list_all(limit=4)]
    assert got.id not in remaining and len(remaining) == 6
    deleted = [u async for u in users.list_all(status="deleted")]
    assert [(u.user_id, u.status) for u in deleted] == [(got.id, "deleted")]


async def test_statuses_emit_blocked_and_unblocked(platform, pool, kit, admin, issuer):
    users = admin.issuer(issuer).users
    created = await users.create({"username_type": "email", "username": email()})
    suspended = await users.update(
        created.id, {"status": "suspended", "status_reason": "fraud check", "status_by": "ops"}
    )
    assert (suspended.status, suspended.status_reason, suspended.status_by) == (
        "suspended",
        "fraud check",
        "ops",
    )
    assert suspended.status_at is not None
    assert [u.user_id async for u in users.list_all(status="suspended")] == [created.id]
    disabled = await users.update(created.id, {"status": "disabled"})
    active = await users.update(created.id, {"status": "active"})
    assert (disabled.status, active.status) == ("disabled", "active")
    again = await users.update(created.id, {"status": "active"})  # already so: no event
    assert again._etag == active._etag
    assert await kit.events_of(platform, pool, created.id) == [
        "user.created",
        "user.blocked",
        "user.blocked",
        "user.unblocked",
    ]
    with pytest.raises(ValidationError):
        await users.update(created.id, {"status": "deleted"})


async def test_duplicate_username_in_an_issuer_conflicts(admin, issuer):
    users = admin.issuer(issuer).users
    address = email()
    await users.create({"username_type": "email", "username": address})
    with pytest.raises(ConflictError):
        await users.create({"username_type": "email", "username": address.upper()})


async def test_username_is_free_again_after_delete(admin, issuer):
    users = admin.issuer(issuer).users
    address = email()
    first = await users.create({"username_type": "email", "username": address})
    await users.delete(first.id)
    second = await users.create({"email": address, "display_name": "Again"})
    assert second.username == address and second.profile == {"display_name": "Again"}


async def test_stale_if_match_is_refused(admin, issuer):
    users = admin.issuer(issuer).users
    created = await users.create({"username_type": "email", "username": email()})
    await users.update(created.id, {"profile": {"a": 1}})
    with pytest.raises(PreconditionFailedError) as refused:
        await users.update(created.id, {"profile": {"a": 2}}, if_match=created._etag)
    assert refused.value.current_etag == (await users.get(created.id))._etag
    with pytest.raises(PreconditionFailedError):
        await users.delete(created.id, if_match=created._etag)


async def test_concurrent_patches_with_one_etag_one_wins(admin, issuer):
    users = admin.issuer(issuer).users
    created = await users.create({"username_type": "email", "username": email()})

    async def patch(value: str) -> object:
        try:
            return await users.update(created.id, {"profile": {"v": value}}, if_match=created._etag)
        except PreconditionFailedError as exc:
            return exc

    outcomes = await asyncio.gather(patch("a"), patch("b"))
    refused = [o for o in outcomes if isinstance(o, PreconditionFailedError)]
    assert len(refused) == 1
    winner = next(o for o in outcomes if not isinstance(o, PreconditionFailedError))
    assert (await users.get(created.id)).profile == winner.profile


async def test_unicode_usernames_and_profiles_round_trip(admin, issuer):
    users = admin.issuer(issuer).users
    created = await users.create(
        {
            "username_type": "unique-name",
            "username": "Zoë ☃ 山田",
            "profile": {"display_name": "Zoë 🦊"},
        }
    )
    got = await users.get(created.id)
    assert got.username == "Zoë ☃ 山田" and got.profile == {"display_name": "Zoë 🦊"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ('{"username_type": "email", ', 400, None),
        ("[1, 2]", 400, None),
        ('{"username_type": "email", "username": 5}', 422, "username"),
        ('{"username_type": "fax", "username": "x"}', 422, "username_type"),
        ('{"username_type": "email", "username": "not-an-email"}', 422, "username"),
        ('{"username_type": "phone", "username": "0612"}', 422, "username"),
        ('{"username": "a@example.com"}', 422, "username_type"),
        ('{"username_type": "email"}', 422, "username"),
        ('{"username_type": "email", "username": "a@b.co", "password": "pw"}', 422, "password"),
        ('{"username_type": "email", "username": "a@b.co", "scopes": "x"}', 422, "scopes"),
        (
            '{"username_type": "email", "username": "a@b.co", "profile": {"n": "\\u0000"}}',
            422,
            "profile.n",
        ),
        (
            '{"username_type": "email", "username": "a@b.co", "metadata": {"bad key": 1}}',
            422,
            "metadata",
        ),
    ],
)
async def test_bad_create_bodies_are_refused_without_events(
    platform, pool, kit, issuer, body, status, field
):
    before = await kit.count_events(platform, pool)
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        resp = await http.post(
            users_url(platform, issuer),
            content=body,
            headers={"content-type": "application/json"},
        )
    assert resp.status_code == status, resp.text
    if field is not None:
        assert field in [f["field"] for f in resp.json()["fields"]]
    assert await kit.count_events(platform, pool) == before


async def test_oversized_metadata_and_bad_queries_are_refused(platform, pool, kit, issuer):
    big = {f"k{i}": "x" * 200 for i in range(45)}
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        resp = await http.post(
            users_url(platform, issuer),
            json={"username_type": "email", "username": email(), "metadata": big},
        )
        assert resp.status_code == 422 and resp.json()["fields"][0]["field"] == "metadata"
        for query in ("status=gone", "cursor=bm9wZQ", "limit=0", "limit=abc"):
            resp = await http.get(f"{users_url(platform, issuer)}?{query}")
            assert resp.status_code == 400, (query, resp.text)
        wrong_type = await http.patch(f"{users_url(platform, issuer)}/usr_nope", json={"status": 3})
        assert wrong_type.status_code == 422
        missing = await http.patch(f"{users_url(platform, issuer)}/usr_nope", json={})
        assert missing.status_code == 404
        bad_content = await http.post(
            users_url(platform, issuer), content=b"x", headers={"content-type": "text/plain"}
        )
        assert bad_content.status_code == 415


async def test_unknown_issuer_and_user_are_not_found(platform, admin, issuer):
    with pytest.raises(NotFoundError):
        await admin.issuer("i_" + "0" * 25).users.list()
    with pytest.raises(NotFoundError):
        await admin.issuer("i_" + "0" * 25).users.create(
            {"username_type": "email", "username": email()}
        )
    with pytest.raises(NotFoundError):
        await admin.issuer(issuer).users.get("usr_missing")
    with pytest.raises(NotFoundError):
        await admin.issuer(issuer).users.delete("usr_missing")


@pytest.mark.in_process  # another account: made in-process
async def test_another_accounts_key_is_refused_on_every_route(platform, kit, admin, issuer):
    directory = kit.part(platform, "directory")
    other = await directory.create_account("Tenant B", actor=kit.ADMIN)
    key = await kit.key_with(platform, ["issuers.users:write", "issuers.users:delete"], other)
    created = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": email()}
    )
    intruder = kit.admin_for(platform, key.key_id, key.secret, platform.account_id)
    users = intruder.issuer(issuer).users
    calls = [
        users.list(),
        users.create({"username_type": "email", "username": email()}),
        users.get(created.id),
        users.update(created.id, {"profile": {"x": 1}}),
        users.delete(created.id),
    ]
    for call in calls:
        with pytest.raises(ForbiddenError):
            await call
    await intruder.close()
    # Its own account does not hold this issuer either.
    own = kit.admin_for(platform, key.key_id, key.secret, other)
    with pytest.raises(NotFoundError):
        await own.issuer(issuer).users.get(created.id)
    await own.close()
    assert (await admin.issuer(issuer).users.get(created.id)).profile == {}


@pytest.mark.parametrize(
    ("missing", "route"),
    [
        ("issuers.users:read", "list"),
        ("issuers.users:read", "get"),
        ("issuers.users:write", "create"),
        ("issuers.users:write", "update"),
        ("issuers.users:delete", "delete"),
    ],
)
async def test_a_key_without_the_scope_is_refused(platform, kit, admin, issuer, missing, route):
    created = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": email()}
    )
    removed = {missing, "issuers.users:write"} if missing.endswith(":read") else {missing}
    key = await kit.all_scopes_but(platform, *removed)
    limited = kit.admin_for(platform, key.key_id, key.secret).issuer(issuer).users
    calls = {
        "list": lambda: limited.list(),
        "get": lambda: limited.get(created.id),
        "create": lambda: limited.create({"username_type": "email", "username": email()}),
        "update": lambda: limited.update(created.id, {"profile": {"x": 1}}),
        "delete": lambda: limited.delete(created.id),
    }
    with pytest.raises(ForbiddenError) as refused:
        await calls[route]()
    assert refused.value.error == "insufficient_scope"


@pytest.mark.in_process  # the directory's vault
def test_username_hash_is_not_a_plain_digest(platform, kit):
    vault = kit.part(platform, "users").vault
    value = vault.username_hash("i_a", "Alice@Example.com ")
    assert value == vault.username_hash("i_a", "alice@example.com")
    assert value != vault.username_hash("i_b", "alice@example.com")
    assert value != sha256_hex("alice@example.com")
