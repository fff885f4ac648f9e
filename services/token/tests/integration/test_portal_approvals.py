"""Signup approval through the hosted portal (core-api.md 3.10): an issuer whose signup mode is
`approval` holds each new account as `pending_approval`. The person sees a "waiting for
approval" page, at signup and at every sign-in, until an administrator decides through the
official SDK; once approved the account signs in at once (the decision answers after the login
side applied it), once rejected it never does. Both decisions are mailed to the person."""

from __future__ import annotations

from typing import Any

import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import ConflictError

from authpi.platform.testing.mail import Mailbox
from authpi.testing.plugin import eventually
from services.token.tests.integration.test_portal import (
    PASSWORD,
    Browser,
    email,
    sign_up,
    users_of,
)

WAITING = "Waiting for approval"


async def approval_issuer(platform: Any, issuer_with_keys: Any) -> tuple[AuthPIAdmin, str]:
    admin, issuer_id = await issuer_with_keys(platform, "approvals")
    await admin.issuers.update(issuer_id, {"settings": {"access": {"mode": "approval"}}})

    async def portal_holds_signups() -> bool:
        async with Browser(platform, issuer_id) as b:
            page = await b.get("/signup")
        return page.status_code == 200 and "reviewed by an administrator" in page.text

    await eventually(portal_holds_signups)
    return admin, issuer_id


@pytest.fixture
async def held(platform, issuer_with_keys):
    return await approval_issuer(platform, issuer_with_keys)


async def log_in(platform: Any, issuer_id: str, address: str) -> Any:
    async with Browser(platform, issuer_id) as b:
        await b.get("/login")
        return await b.submit("/login", {"email": address, "password": PASSWORD})


async def pending_id(admin: AuthPIAdmin, issuer_id: str, address: str) -> str:
    """The queued user whose full record has this address."""
    queue = await admin.issuer(issuer_id).approvals.list()
    for item in queue.data:
        user = await admin.issuer(issuer_id).approvals.get(item.user_id)
        if user.username == address:
            return user.id
    raise AssertionError(f"{address} is not waiting for approval")


async def test_a_held_signup_signs_in_only_once_approved(platform, held, mailbox: Mailbox):
    admin, issuer_id = held
    address = email()
    async with Browser(platform, issuer_id) as b:
        created = await sign_up(b, address)
    assert created.status_code == 200 and WAITING in created.text
    assert "authpi_session" not in created.headers.get("set-cookie", "")

    waiting = await log_in(platform, issuer_id, address)
    assert waiting.status_code == 403 and WAITING in waiting.text
    assert "authpi_session" not in waiting.headers.get("set-cookie", "")

    user_id = await pending_id(admin, issuer_id, address)
    approved = await admin.issuer(issuer_id).approvals.update(user_id, {"decision": "approve"})
    assert approved.status == "active" and approved.approval["status"] == "approved"

    # Read-your-writes: the approval answered once the login side applied it.
    signed_in = await log_in(platform, issuer_id, address)
    assert signed_in.status_code == 303 and "authpi_session=" in signed_in.headers["set-cookie"]
    mail = await mailbox.wait_for(to=address, subject_contains="is approved")
    assert f"/{issuer_id}/login" in mail.text
    assert (await admin.issuer(issuer_id).approvals.list()).data == []


async def test_a_rejected_signup_never_signs_in(platform, held, mailbox: Mailbox):
    admin, issuer_id = held
    address = email()
    async with Browser(platform, issuer_id) as b:
        assert WAITING in (await sign_up(b, address)).text
    user_id = await pending_id(admin, issuer_id, address)
    rejected = await admin.issuer(issuer_id).approvals.update(
        user_id, {"decision": "reject", "reason": "not one of ours"}
    )
    assert rejected.status == "blocked" and rejected.status_reason == "not one of ours"
    mail = await mailbox.wait_for(to=address, subject_contains="not approved")
    assert "cannot sign in" in mail.text

    refused = await log_in(platform, issuer_id, address)
    assert refused.status_code == 403 and "blocked" in refused.text
    assert "authpi_session" not in refused.headers.get("set-cookie", "")
    with pytest.raises(ConflictError):  # the decision is final through the queue
        await admin.issuer(issuer_id).approvals.update(user_id, {"decision": "approve"})
    again = await log_in(platform, issuer_id, address)
    assert again.status_code == 403 and "authpi_session" not in again.headers.get("set-cookie", "")


async def test_a_taken_address_answers_like_a_new_signup(platform, held, mailbox: Mailbox):
    admin, issuer_id = held
    address = email()
    async with Browser(platform, issuer_id) as b:
        first = await sign_up(b, address)
    async with Browser(platform, issuer_id) as b:
        again = await sign_up(b, address.upper(), "another password entirely")
    assert first.status_code == again.status_code == 200
    assert WAITING in first.text and WAITING in again.text
    await mailbox.wait_for(to=address, subject_contains="tried to sign up")

    async def one_user() -> bool:
        return [u.status for u in await users_of(admin, issuer_id)] == ["pending_approval"]

    await eventually(one_user)
