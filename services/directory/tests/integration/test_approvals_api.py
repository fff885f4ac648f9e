"""The signup approval queue over the Core API (core-api.md 3.10, contract 4.15) with the official
SDK: held signups (the directory's UserRegistry, as the login portal calls it, on an issuer whose
signup mode is `approval`), the queue oldest first in privacy-reduced items with cursor paging,
the full record of a waiting user, approve and reject with their events and mails, the refusals
(unknown, decided, bad bodies, stale If-Match), scopes and account isolation."""

from __future__ import annotations

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

from authpi.platform.testing.mail import Mailbox


def email() -> str:
    return f"held-{uuid.uuid4().hex[:10]}@example.com"


def approvals_url(platform, issuer: str) -> str:
    return f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}/approvals"


@pytest.fixture
async def held_issuer(admin, issuer):
    await admin.issuers.update(issuer, {"settings": {"access": {"mode": "approval"}}})
    return issuer


async def sign_up(platform, kit, issuer: str, address: str | None = None) -> str:
    """A signup as the login portal makes it (UserRegistry.register)."""
    registry = kit.part(platform, "user_registry")
    return await registry.register(
        account_id=platform.account_id, issuer_id=issuer, username_type="email",
        username=address or email(), profile={"display_name": "Held"},
    )  # fmt: skip


async def test_the_queue_is_oldest_first_privacy_reduced_and_paged(
    platform, kit, admin, held_issuer
):
    addresses = [email() for _ in range(5)]
    ids = [await sign_up(platform, kit, held_issuer, a) for a in addresses]
    # An open-issuer style user (created by the API) never enters the queue.
    await admin.issuer(held_issuer).users.create({"username_type": "email", "username": email()})
    approvals = admin.issuer(held_issuer).approvals
    first = await approvals.list(limit=2)
    assert [i.user_id for i in first.data] == ids[:2] and first.has_more
    second = await approvals.list(limit=2, cursor=first.next_cursor)
    assert [i.user_id for i in second.data] == ids[2:4]
    everyone = [i.user_id async for i in approvals.list_all(limit=2)]
    assert everyone == ids
    item = first.data[0]
    assert item.status == "pending_approval" and item.issuer_id == held_issuer
    assert item.username_hash and item.store_id and item.username_type == "email"
    raw = await _raw_list(platform, kit, held_issuer)
    assert addresses[0] not in raw and "Held" not in raw  # no username, no profile
    full = await approvals.get(ids[0])
    assert full.username == addresses[0] and full.profile == {"display_name": "Held"}
    assert full.status == "pending_approval" and full.approval["status"] == "pending"


async def _raw_list(platform, kit, issuer: str) -> str:
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        resp = await http.get(approvals_url(platform, issuer))
        assert resp.status_code == 200
        return resp.text


async def test_approve_and_reject_with_events_and_mail(
    platform, pool, kit, admin, held_issuer, mailbox: Mailbox
):
    yes, no = email(), email()
    yes_id, no_id = (
        await sign_up(platform, kit, held_issuer, yes),
        await sign_up(platform, kit, held_issuer, no),
    )
    approvals = admin.issuer(held_issuer).approvals
    approved = await approvals.update(yes_id, {"decision": "approve"})
    assert approved.status == "active" and approved.approval["status"] == "approved"
    assert approved.approval["decided_by"] == platform.api_key_id
    rejected = await approvals.update(no_id, {"status": "blocked", "status_reason": "spam"})
    assert rejected.status == "blocked" and rejected.status_reason == "spam"
    assert rejected.approval == {**rejected.approval, "status": "rejected", "reason": "spam"}
    assert await kit.events_of(platform, pool, yes_id) == [
        "user.created", "user.approval.requested", "user.approval.approved", "user.unblocked",
    ]  # fmt: skip
    assert await kit.events_of(platform, pool, no_id) == [
        "user.created", "user.approval.requested", "user.approval.rejected", "user.blocked",
    ]  # fmt: skip
    assert "is approved" in (await mailbox.wait_for(to=yes, subject_contains="approved")).subject
    assert (await mailbox.wait_for(to=no, subject_contains="not approved")).to == no
    # Decided users leave the queue and are users like any other.
    assert (await approvals.list()).data == []
    users = admin.issuer(held_issuer).users
    assert (await users.get(yes_id)).status == "active"
    assert (await users.get(no_id)).approval["status"] == "rejected"


async def test_refusals(platform, kit, admin, held_issuer):
    approvals = admin.issuer(held_issuer).approvals
    waiting = await sign_up(platform, kit, held_issuer)
    active = await admin.issuer(held_issuer).users.create(
        {"username_type": "email", "username": email()}
    )
    with pytest.raises(NotFoundError):
        await approvals.get("usr_missing")
    with pytest.raises(NotFoundError):
        await approvals.get(active.id)  # not waiting: not in the queue
    with pytest.raises(NotFoundError):
        await approvals.update("usr_missing", {"decision": "approve"})
    with pytest.raises(NotFoundError):
        await admin.issuer("i_" + "0" * 25).approvals.list()
    with pytest.raises(ConflictError):
        await approvals.update(active.id, {"decision": "approve"})
    with pytest.raises(ValidationError):
        await approvals.update(waiting, {})
    with pytest.raises(ValidationError):
        await approvals.update(waiting, {"decision": "approve", "status": "blocked"})
    async with httpx.AsyncClient(auth=kit.bootstrap_key(platform)) as http:
        url = approvals_url(platform, held_issuer)
        for query in ("cursor=bm9wZQ", "limit=0", "limit=101"):
            assert (await http.get(f"{url}?{query}")).status_code == 400, query
        maybe = await http.patch(f"{url}/{waiting}", json={"decision": "maybe"})
        assert maybe.status_code in (400, 422), maybe.text
    with pytest.raises(PreconditionFailedError):
        await approvals.update(waiting, {"decision": "approve"}, if_match='"1"')
    current = await approvals.get(waiting)
    decided = await approvals.update(
        waiting, {"decision": "approve"}, if_match=getattr(current, "_etag", None)
    )
    assert decided.status == "active"
    with pytest.raises(ConflictError):  # no longer pending
        await approvals.update(waiting, {"decision": "reject"})
    with pytest.raises(NotFoundError):
        await approvals.get(waiting)
    with pytest.raises(ConflictError):  # the users route does not bypass the queue
        other = await sign_up(platform, kit, held_issuer)
        await admin.issuer(held_issuer).users.update(other, {"status": "active"})


@pytest.mark.parametrize(
    ("missing", "route"),
    [
        ("issuers.approvals:read", "list"),
        ("issuers.approvals:read", "get"),
        ("issuers.approvals:write", "update"),
    ],
)
async def test_a_key_without_the_scope_is_refused(
    platform, kit, admin, held_issuer, missing, route
):
    waiting = await sign_up(platform, kit, held_issuer)
    removed = {missing, "issuers.approvals:write"} if missing.endswith(":read") else {missing}
    key = await kit.all_scopes_but(platform, *removed)
    limited = kit.admin_for(platform, key.key_id, key.secret).issuer(held_issuer).approvals
    calls = {
        "list": lambda: limited.list(),
        "get": lambda: limited.get(waiting),
        "update": lambda: limited.update(waiting, {"decision": "approve"}),
    }
    with pytest.raises(ForbiddenError) as refused:
        await calls[route]()
    assert refused.value.error == "insufficient_scope"
    assert (await admin.issuer(held_issuer).approvals.get(waiting)).status == "pending_approval"


async def test_another_accounts_key_is_refused(platform, kit, admin, held_issuer):
    waiting = await sign_up(platform, kit, held_issuer)
    directory = kit.part(platform, "directory")
    other = await directory.create_account("Tenant B", actor=kit.ADMIN)
    key = await kit.key_with(platform, ["issuers.approvals:read", "issuers.approvals:write"], other)
    intruder = kit.admin_for(platform, key.key_id, key.secret, platform.account_id)
    approvals = intruder.issuer(held_issuer).approvals
    calls = [
        approvals.list(),
        approvals.get(waiting),
        approvals.update(waiting, {"decision": "approve"}),
    ]
    for call in calls:
        with pytest.raises(ForbiddenError):
            await call
    await intruder.close()
    own = kit.admin_for(platform, key.key_id, key.secret, other)
    with pytest.raises(NotFoundError):
        await own.issuer(held_issuer).approvals.get(waiting)
    with pytest.raises(NotFoundError):
        await own.issuer(held_issuer).approvals.update(waiting, {"decision": "reject"})
    await own.close()
    assert (await admin.issuer(held_issuer).approvals.get(waiting)).status == "pending_approval"
