"""Organization invitations over the Core API (core-api.md 3.15, contract 4.28) with the official
SDK: create (202, emailed through the development mail sink), list with paging and the status
filter, get, update, resend and revoke with ETags; the organization's invitation setting and its
suspension; scopes and account isolation; and the invitee's answer through the emailed link (the
directory's `invitations` export, as the portal's page calls it): a reused, revoked, superseded
or expired link is refused, and another address cannot accept; a sign-up with the invited
address creates the user and the membership in one commit, and is the only sign-up an
`invite_only` issuer takes."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid

import pytest
from authpi_admin.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from psycopg import sql

from authpi.errors import AccessDenied, Conflict, NotFound
from authpi.platform.testing.mail import Mailbox
from authpi.platform.testing.tenants import part as kit_part

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk

WRITE = "issuers.organizations.invitations:write"
READ = "issuers.organizations.invitations:read"


def email() -> str:
    return f"Invitee-{uuid.uuid4().hex[:10]}@Example.com"


def token_of(link: str) -> str:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]


@pytest.fixture
async def org(admin, issuer):
    return await admin.issuer(issuer).organizations.create(
        {"name": "Acme", "scopes": ["member", "owner", "projects:write"],
         "invitation_message": "Welcome aboard."}
    )  # fmt: skip


@pytest.fixture
def invitations(platform, kit):
    return kit.part(platform, "invitations")


async def invite(admin, issuer, org_id, address, **body):
    return (
        await admin.issuer(issuer)
        .organization(org_id)
        .invitations.create({"email_invited": address, "scopes": ["member"], **body})
    )


async def link_for(mailbox: Mailbox, address: str) -> str:
    mail = await mailbox.wait_for(to=address.lower(), subject_contains="invited")
    return mail.link("token=")


async def test_create_get_update_list_and_mail(platform, pool, kit, admin, issuer, org, mailbox):
    api = admin.issuer(issuer).organization(org.id).invitations
    address = email()
    created = await api.create({
        "email_invited": address, "scopes": ["member", "projects:write"],
        "user_title": "Engineering Manager", "message": "Join us!",
        "inviter": {"name": "Alice Demir"}, "expires_in_seconds": 1_209_600,
        "metadata": {"team": "core"}})  # fmt: skip
    assert created.id.startswith("inv_") and created.status == "pending"
    assert created.email_invited == address.lower() and created.org_id == org.id
    assert created.issuer_id == issuer and created.inviter.name == "Alice Demir"
    assert created.expires_at - created.created_at == 1_209_600_000
    assert created.last_email_sent_at == created.created_at and created._etag

    mail = await mailbox.wait_for(to=address.lower(), subject_contains="Acme")
    assert "Alice Demir invited you" in mail.text and "Join us!" in mail.text
    assert "Welcome aboard." in mail.text and "Engineering Manager" in mail.text
    token = token_of(mail.link("token="))
    assert len(token) >= 40
    # The token is stored nowhere; its digest stays out of the public events.
    assert await kit.places_holding(platform, pool, token) == []

    got = await api.get(created.id)
    assert got == created and got._etag == created._etag
    updated = await api.update(
        created.id, {"user_title": "Director", "metadata": {"x": 1}}, if_match=created._etag
    )
    assert updated.user_title == "Director" and updated.metadata.model_dump() == {
        "team": "core",
        "x": 1,
    }
    with pytest.raises(PreconditionFailedError):
        await api.update(created.id, {"message": "late"}, if_match=created._etag)
    assert [i.id async for i in api.list_all()] == [created.id]
    events = await kit.stored_events(platform, pool, org.id)
    assert [e["type"] for e in events] == [
        "organization.created", "organization.invitation.created",
        "organization.invitation.updated",
    ]  # fmt: skip
    assert events[1]["meta"]["subject"] == {"org_id": org.id, "invitation_id": created.id}
    assert token not in str(events)


async def test_pages_and_status_filter(admin, issuer, org):
    api = admin.issuer(issuer).organization(org.id).invitations
    ids = [(await invite(admin, issuer, org.id, email())).id for _ in range(3)]
    page = await api.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert [i.id async for i in api.list_all(limit=2)] == list(reversed(ids))
    await api.revoke(ids[0])
    assert [i.id async for i in api.list_all(status="revoked")] == [ids[0]]
    assert sorted([i.id async for i in api.list_all(status="pending")]) == sorted(ids[1:])
    with pytest.raises(ValidationError):
        await api.list(status="nonsense")


async def test_bad_bodies_and_conflicts(admin, issuer, org, kit):
    api = admin.issuer(issuer).organization(org.id).invitations
    for body in (
        {"email_invited": "not-an-email", "scopes": ["member"]},
        {"email_invited": email(), "scopes": []},
        {"email_invited": email()},
        {"email_invited": email(), "scopes": ["member"], "expires_in_seconds": 60},
        {"email_invited": email(), "scopes": ["unknown:scope"]},
        {"email_invited": email(), "scopes": ["member"], "expires_at": 1},
    ):
        with pytest.raises(ValidationError):
            await api.create(body)
    address = email()
    await invite(admin, issuer, org.id, address)
    with pytest.raises(ConflictError):  # a pending invitation for the address exists
        await invite(admin, issuer, org.id, address.upper())
    member = f"member-{uuid.uuid4().hex[:8]}@example.com"
    user = await admin.issuer(issuer).users.create({"username_type": "email", "username": member})
    await admin.issuer(issuer).organization(org.id).members.create({"member_id": user.id})
    with pytest.raises(ConflictError):  # the address belongs to an active member
        await invite(admin, issuer, org.id, member)
    with pytest.raises(NotFoundError):
        await api.get("inv_none")
    with pytest.raises(NotFoundError):
        await admin.issuer(issuer).organization("org_none").invitations.list()


async def test_resend_mints_a_new_link_and_revoke_ends_it(
    platform, admin, issuer, org, mailbox, invitations
):
    api = admin.issuer(issuer).organization(org.id).invitations
    address = email()
    created = await invite(admin, issuer, org.id, address)
    first = token_of(await link_for(mailbox, address))
    resent = await api.resend(created.id, if_match=created._etag)
    assert resent["id"] == created.id and resent["last_email_sent_at"] > created.created_at
    assert resent["expires_at"] == created.expires_at
    second = token_of(await link_for(mailbox, address))
    assert second != first
    with pytest.raises(NotFound):  # the superseded link
        await invitations.link(issuer, first)
    assert (await invitations.link(issuer, second)).id == created.id
    with pytest.raises(PreconditionFailedError):
        await api.revoke(created.id, if_match=created._etag)
    revoked = await api.revoke(created.id)
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    with pytest.raises(ConflictError):
        await api.revoke(created.id)
    with pytest.raises(ConflictError):
        await api.resend(created.id)
    with pytest.raises(ConflictError):
        await api.update(created.id, {"message": "x"})
    with pytest.raises(Conflict):  # the revoked link
        await invitations.answer(issuer, second, accept=False)


async def test_invitation_setting_and_suspension_freeze(admin, issuer, org):
    orgs = admin.issuer(issuer).organizations
    api = admin.issuer(issuer).organization(org.id).invitations
    pending = await invite(admin, issuer, org.id, email())
    await orgs.update(org.id, {"invitation_enabled": False})
    with pytest.raises(ConflictError):
        await invite(admin, issuer, org.id, email())
    await orgs.update(org.id, {"invitation_enabled": True, "status": "suspended"})
    with pytest.raises(ConflictError):
        await invite(admin, issuer, org.id, email())
    for call in (
        api.update(pending.id, {"message": "x"}),
        api.resend(pending.id),
        api.revoke(pending.id),
    ):
        with pytest.raises(ConflictError):
            await call
    assert (await api.get(pending.id)).status == "pending"  # still readable
    await orgs.update(org.id, {"status": "active"})
    assert (await api.revoke(pending.id))["status"] == "revoked"


async def test_accept_creates_the_membership_once(
    platform, pool, kit, admin, issuer, org, mailbox, invitations
):
    address = email()
    user = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": address.lower()}
    )
    created = await invite(admin, issuer, org.id, address, user_title="Engineer",
                           scopes=["member", "projects:write"])  # fmt: skip
    assert created.user_id_invited == user.id
    token = token_of(await link_for(mailbox, address))
    shown = await invitations.link(issuer, token)
    assert (shown.org_name, shown.email_invited, shown.status) == ("Acme", address.lower(),
                                                                   "pending")  # fmt: skip
    await invitations.answer(issuer, token, accept=True, user_id=user.id)
    members = admin.issuer(issuer).organization(org.id).members
    (member,) = [m async for m in members.list_all()]
    assert member.member_id == user.id
    assert member.scopes == ["member", "projects:write"] and member.user_title == "Engineer"
    got = await admin.issuer(issuer).organization(org.id).invitations.get(created.id)
    assert got.status == "accepted" and got.accepted_at and got.user_id_invited == user.id
    assert (await kit.events_of(platform, pool, org.id))[-2:] == [
        "organization.invitation.accepted", "organization.membership.created"
    ]  # fmt: skip
    with pytest.raises(Conflict):  # a reused link
        await invitations.answer(issuer, token, accept=True, user_id=user.id)


async def test_another_address_cannot_accept(admin, issuer, org, mailbox, invitations):
    address = email()
    created = await invite(admin, issuer, org.id, address)
    token = token_of(await link_for(mailbox, address))
    intruder = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": f"other-{uuid.uuid4().hex[:8]}@example.com"}
    )
    with pytest.raises(Conflict) as refused:
        await invitations.answer(issuer, token, accept=True, user_id=intruder.id)
    assert refused.value.reason == "invitation.other_address"
    assert [m async for m in admin.issuer(issuer).organization(org.id).members.list_all()] == []
    with pytest.raises(NotFound):  # a guessed token, and the right token in another issuer
        await invitations.answer(issuer, token[:-2] + "zz", accept=True, user_id=intruder.id)
    other_issuer = await admin.issuers.create({"name": "elsewhere"})
    with pytest.raises(NotFound):
        await invitations.link(other_issuer.id, token)
    assert (await admin.issuer(issuer).organization(org.id).invitations.get(created.id)).status == (
        "pending"
    )


async def test_decline(admin, issuer, org, mailbox, invitations):
    address = email()
    created = await invite(admin, issuer, org.id, address)
    token = token_of(await link_for(mailbox, address))
    await invitations.answer(issuer, token, accept=False)
    got = await admin.issuer(issuer).organization(org.id).invitations.get(created.id)
    assert got.status == "declined" and got.declined_at
    with pytest.raises(Conflict):
        await invitations.answer(issuer, token, accept=False)


async def test_an_expired_link_is_refused(admin, issuer, org, mailbox, invitations):
    api = admin.issuer(issuer).organization(org.id).invitations
    address = email()
    user = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": address.lower()}
    )
    created = await invite(admin, issuer, org.id, address,
                           expires_at=int(time.time() * 1000) + 1500)  # fmt: skip
    token = token_of(await link_for(mailbox, address))
    while (await api.get(created.id)).status == "pending":  # expiry is read lazily
        await asyncio.sleep(0.2)
    assert (await api.get(created.id)).status == "expired"
    assert [i.id async for i in api.list_all(status="expired")] == [created.id]
    with pytest.raises(Conflict) as refused:
        await invitations.answer(issuer, token, accept=True, user_id=user.id)
    assert refused.value.reason == "invitation.expired"
    with pytest.raises(ConflictError):
        await api.resend(created.id)
    # An expired invitation no longer blocks a new one for the address.
    assert (await invite(admin, issuer, org.id, address)).status == "pending"


@pytest.mark.parametrize("route", ["list", "get", "create", "update", "resend", "revoke"])
async def test_a_key_without_the_scope_is_refused(platform, kit, admin, issuer, org, route):
    created = await invite(admin, issuer, org.id, email())
    missing = {READ, WRITE} if route in ("list", "get") else {WRITE}
    key = await kit.all_scopes_but(platform, *missing)
    limited = kit.admin_for(platform, key.key_id, key.secret)
    api = limited.issuer(issuer).organization(org.id).invitations
    calls = {
        "list": lambda: api.list(),
        "get": lambda: api.get(created.id),
        "create": lambda: api.create({"email_invited": email(), "scopes": ["member"]}),
        "update": lambda: api.update(created.id, {"message": "x"}),
        "resend": lambda: api.resend(created.id),
        "revoke": lambda: api.revoke(created.id),
    }
    with pytest.raises(ForbiddenError) as refused:
        await calls[route]()
    assert refused.value.error == "insufficient_scope"
    await limited.close()
    assert (await admin.issuer(issuer).organization(org.id).invitations.get(created.id)).status == (
        "pending"
    )


@pytest.mark.in_process  # another account: made in-process
async def test_another_accounts_key_is_refused(platform, kit, admin, issuer, org):
    created = await invite(admin, issuer, org.id, email())
    directory = kit.part(platform, "directory")
    other = await directory.create_account("Tenant B", actor=kit.ADMIN)
    key = await kit.key_with(platform, [READ, WRITE], other)
    intruder = kit.admin_for(platform, key.key_id, key.secret, platform.account_id)
    api = intruder.issuer(issuer).organization(org.id).invitations
    for call in (api.list(), api.get(created.id), api.revoke(created.id)):
        with pytest.raises(ForbiddenError):
            await call
    await intruder.close()
    own = kit.admin_for(platform, key.key_id, key.secret, other)
    mine = own.issuer(issuer).organization(org.id).invitations
    for call in (mine.get(created.id), mine.revoke(created.id), mine.list()):
        with pytest.raises(NotFoundError):
            await call
    await own.close()
    assert (await admin.issuer(issuer).organization(org.id).invitations.get(created.id)).status == (
        "pending"
    )


async def test_an_invited_signup_creates_the_user_and_the_membership_in_one_commit(
    platform, pool, kit, admin, issuer, org, mailbox, invitations
):
    await admin.issuers.update(issuer, {"settings": {"access": {"mode": "approval"}}})
    address = email()
    created = await invite(admin, issuer, org.id, address, user_title="Engineer")
    token = token_of(await link_for(mailbox, address))
    user_id = await invitations.register_invited(
        account_id=platform.account_id, issuer_id=issuer, token=token, username=address,
        profile={"display_name": "Dana"},
    )  # fmt: skip
    user = await admin.issuer(issuer).users.get(user_id)
    assert user.username == address.lower() and user.status == "active"  # never held
    (member,) = [m async for m in admin.issuer(issuer).organization(org.id).members.list_all()]
    assert (member.member_id, member.user_title) == (user_id, "Engineer")
    got = await admin.issuer(issuer).organization(org.id).invitations.get(created.id)
    assert got.status == "accepted" and got.user_id_invited == user_id
    [made] = await kit.stored_events(platform, pool, user_id)
    assert made["type"] == "user.created" and made["data"]["method"] == "invitation"
    answered = (await kit.stored_events(platform, pool, org.id))[-2:]
    assert [e["type"] for e in answered] == [
        "organization.invitation.accepted", "organization.membership.created"
    ]  # fmt: skip
    commits = sql.SQL(
        "SELECT DISTINCT tx_id FROM {}.events WHERE stream_id = %s OR (stream_id = %s"
        " AND type IN ('organization.invitation.accepted', 'organization.membership.created'))"
    ).format(kit.schema_of(platform))
    async with pool.connection() as conn:
        assert len(await (await conn.execute(commits, [user_id, org.id])).fetchall()) == 1
    # The link worked once: a second sign-up with it creates nobody.
    with pytest.raises(Conflict):
        await invitations.register_invited(
            account_id=platform.account_id, issuer_id=issuer, token=token,
            username=f"second-{address}", profile={},
        )  # fmt: skip
    assert [u.user_id async for u in admin.issuer(issuer).users.list_all()] == [user_id]


async def test_a_refused_invited_signup_creates_no_user(
    platform, admin, issuer, org, mailbox, invitations
):
    users = admin.issuer(issuer).users
    address = email()
    created = await invite(admin, issuer, org.id, address)
    token = token_of(await link_for(mailbox, address))
    with pytest.raises(Conflict) as other:  # another address than the invited one
        await invitations.register_invited(
            account_id=platform.account_id, issuer_id=issuer, token=token,
            username=f"other-{uuid.uuid4().hex[:8]}@example.com", profile={},
        )  # fmt: skip
    assert other.value.reason == "invitation.other_address"
    await admin.issuer(issuer).organization(org.id).invitations.revoke(created.id)
    with pytest.raises(Conflict) as revoked:
        await invitations.register_invited(
            account_id=platform.account_id, issuer_id=issuer, token=token, username=address,
            profile={},
        )  # fmt: skip
    assert revoked.value.reason == "invitation.not_pending"
    assert [u async for u in users.list_all()] == []


async def test_invite_only_and_closed_issuers_refuse_signups_without_an_invitation(
    platform, admin, issuer, org, mailbox, invitations
):
    registry = kit_part(platform, "user_registry")
    for mode in ("invite_only", "closed"):
        await admin.issuers.update(issuer, {"settings": {"access": {"mode": mode}}})
        with pytest.raises(AccessDenied) as refused:
            await registry.register(
                account_id=platform.account_id, issuer_id=issuer, username_type="email",
                username=email(), profile={},
            )  # fmt: skip
        assert refused.value.reason == f"signup.{mode}"
    address = email()
    await invite(admin, issuer, org.id, address)
    token = token_of(await link_for(mailbox, address))
    with pytest.raises(AccessDenied):  # closed: not even an invited address signs up
        await invitations.register_invited(
            account_id=platform.account_id, issuer_id=issuer, token=token, username=address,
            profile={},
        )  # fmt: skip
    await admin.issuers.update(issuer, {"settings": {"access": {"mode": "invite_only"}}})
    user_id = await invitations.register_invited(
        account_id=platform.account_id, issuer_id=issuer, token=token, username=address,
        profile={},
    )  # fmt: skip
    assert [u.user_id async for u in admin.issuer(issuer).users.list_all()] == [user_id]


async def test_an_organization_that_stopped_taking_invitations_refuses_acceptance(
    admin, issuer, org, mailbox, invitations
):
    address = email()
    user = await admin.issuer(issuer).users.create(
        {"username_type": "email", "username": address.lower()}
    )
    created = await invite(admin, issuer, org.id, address)
    token = token_of(await link_for(mailbox, address))
    await admin.issuer(issuer).organizations.update(org.id, {"invitation_enabled": False})
    with pytest.raises(Conflict) as refused:
        await invitations.answer(issuer, token, accept=True, user_id=user.id)
    assert refused.value.reason == "invitation.disabled"
    await invitations.answer(issuer, token, accept=False)  # a decline is recorded
    got = await admin.issuer(issuer).organization(org.id).invitations.get(created.id)
    assert got.status == "declined"


async def test_deleting_the_user_who_accepted_makes_the_invitations_address_unreadable(
    pool, admin, issuer, org, mailbox, invitations
):
    """An accepted invitation's address is the user's: it goes with the user (DESIGN.md 7)."""
    address = email()
    users = admin.issuer(issuer).users
    user = await users.create({"username_type": "email", "username": address.lower()})
    created = await invite(admin, issuer, org.id, address, message="Welcome, Dana",
                           inviter={"name": "Alice Demir"})  # fmt: skip
    await invitations.answer(issuer, token_of(await link_for(mailbox, address)), accept=True,
                             user_id=user.id)  # fmt: skip
    api = admin.issuer(issuer).organization(org.id).invitations
    accepted = await api.get(created.id)
    assert (accepted.status, accepted.email_invited) == ("accepted", address.lower())
    assert accepted.message == "Welcome, Dana" and accepted.inviter.name == "Alice Demir"
    kept = await invite(admin, issuer, org.id, email())  # another invitation is not touched

    await users.delete(user.id)
    gone = await api.get(created.id)
    assert (gone.status, gone.email_invited, gone.message, gone.inviter) == (
        "accepted", "", None, None
    )  # fmt: skip
    async with pool.connection() as conn:  # the invitation's data key went with the user
        assert await invitations.vault.key_for(conn, created.id) is None
    assert (await api.get(kept.id)).email_invited == kept.email_invited


async def test_a_changed_message_is_sealed_like_the_rest(platform, pool, kit, admin, issuer, org):
    """A PATCH of the message re-seals the invitation's snapshot: the next read shows it, the
    event carries only the sealed snapshot, and the address and inviter stay as they were."""
    api = admin.issuer(issuer).organization(org.id).invitations
    address = email()
    created = await invite(admin, issuer, org.id, address, message="First note",
                           inviter={"name": "Alice Demir"})  # fmt: skip
    changed = await api.update(created.id, {"message": "Second note"}, if_match=created._etag)
    assert (changed.message, changed.email_invited, changed.inviter.name) == (
        "Second note", address.lower(), "Alice Demir"
    )  # fmt: skip
    same = await api.update(created.id, {"message": "Second note"})
    assert same._etag == changed._etag  # the same message again changes nothing
    events = await kit.stored_events(platform, pool, org.id)
    assert events[-1]["type"] == "organization.invitation.updated"
    assert events[-1]["data"]["changed"] == ["message"] and events[-1]["data"]["pii"]
    for needle in ("First note", "Second note", "Alice Demir", address.lower()):
        assert needle not in str(events)
        assert await kit.places_holding(platform, pool, needle) == []


async def test_deleting_the_organization_destroys_its_invitations_keys(
    pool, admin, issuer, org, invitations
):
    created = [await invite(admin, issuer, org.id, email()) for _ in range(2)]
    async with pool.connection() as conn:
        assert all([await invitations.vault.key_for(conn, i.id) for i in created])
    await admin.issuer(issuer).organizations.delete(org.id)
    async with pool.connection() as conn:
        assert [await invitations.vault.key_for(conn, i.id) for i in created] == [None, None]
