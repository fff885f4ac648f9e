"""Organization invitations from the outside, for end-to-end tests: an organization and an
invitation made through the official admin SDK, and the link of the invitation's mail as the
development mail sink captured it (never read from inside the platform)."""

from __future__ import annotations

from typing import Any

from authpi.platform.testing.login import LoginTenant, login_tenant, settings_applied
from authpi.platform.testing.mail import Mailbox
from authpi.platform.testing.running import RunningPlatform

ORG = "Acme Robotics"
LINK = "/invitation?token="


async def invite_only_tenant(platform: RunningPlatform, **options: Any) -> LoginTenant:
    """A login tenant (`login_tenant` with `options`) whose issuer takes sign-ups by invitation
    only, once its portal shows it."""
    made = await login_tenant(
        platform, name="invite-only", settings={"access": {"mode": "invite_only"}}, **options
    )
    await settings_applied(made.issuer_url, lambda html: 'id="signup"' not in html)
    return made


async def new_org(t: LoginTenant, name: str = ORG) -> str:
    org = await t.admin.issuer(t.issuer_id).organizations.create(
        {"name": name, "scopes": ["member", "admin"]}
    )
    return org.id


async def invite(
    t: LoginTenant, org_id: str, email: str, mailbox: Mailbox, **body: Any
) -> tuple[str, str]:
    """(invitation id, the link of its mail) of a new invitation of `org_id` to `email`; `body`
    adds to or replaces the create body's fields."""
    created = await t.admin.issuer(t.issuer_id).organization(org_id).invitations.create({
        "email_invited": email, "scopes": ["member", "admin"], "user_title": "Robot Wrangler",
        "message": "The whole team is already here.", "inviter": {"name": "Alice Demir"},
        **body})  # fmt: skip
    mail = await mailbox.wait_for(to=email.lower(), subject_contains="You are invited to join")
    return created.id, mail.link(LINK)


async def member_ids(t: LoginTenant, org_id: str) -> list[str]:
    members = t.admin.issuer(t.issuer_id).organization(org_id).members
    return [m.member_id async for m in members.list_all()]


async def status_of(t: LoginTenant, org_id: str, invitation_id: str) -> str:
    api = t.admin.issuer(t.issuer_id).organization(org_id).invitations
    return (await api.get(invitation_id)).status
