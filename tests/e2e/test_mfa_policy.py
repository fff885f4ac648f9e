"""When the portal asks for a second factor, over HTTP: the issuer's
`settings.security.mfa_required` and an organization's `security.mfa_required` require one of
every (member) user; a user without any enrols one on the portal's page (secret, first code,
backup codes shown once) before signing in, and one whose verifier is disabled cannot sign in;
an op session opened before the user had a second factor does not carry them into the next
authorization, through /authorize or the consent page, and accepting an invitation signs in
through the second factor too; the settings refuse anything but a boolean."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import urlsplit

import pyotp
import pytest
from authpi_admin.errors import ValidationError

from authpi.platform.testing.invitations import invite, member_ids, new_org
from authpi.platform.testing.login import (
    PASSWORD,
    LoginTenant,
    PortalBrowser,
    login_tenant,
    new_email,
)
from authpi.platform.testing.mfa import (
    authorize_url,
    enrol_totp,
    location_of,
    passed,
    password_step,
    signed_up,
)

REQUIRED = "Two-step verification required"
SECRET = re.compile(r'<p class="secret" id="secret">([A-Z2-7 ]+)</p>')
CODE = re.compile(r"<li>([0-9A-Z]{5}-[0-9A-Z]{5})</li>")


@pytest.fixture
async def tenant(platform):
    made = await login_tenant(platform, name="mfa-policy")
    yield made
    await made.admin.close()


def on_mfa_page(location: str) -> bool:
    return urlsplit(location).path.endswith("/mfa")


async def sign_in(t: LoginTenant, email: str) -> tuple[int, str]:
    """The status of the answer to the password, and where it leads (or its page)."""
    async with PortalBrowser() as b:
        login = location_of(await b.get(authorize_url(t)))
        answer = await b.submit(login, {"email": email, "password": PASSWORD})
    if answer.status_code in (302, 303):
        return answer.status_code, location_of(answer)
    return answer.status_code, answer.text


async def test_issuer_policy_requires_a_second_factor_of_every_user(tenant):
    t = tenant
    email = new_email("policy")
    await signed_up(t, email)
    assert passed((await sign_in(t, email))[1], t)

    await t.admin.issuers.update(t.issuer_id, {"settings": {"security": {"mfa_required": True}}})
    async with PortalBrowser() as b:
        mfa = await password_step(t, b, email)
        assert on_mfa_page(mfa), mfa
        # No verifier yet: the page enrols one, with the secret an authenticator app takes.
        page = await b.get(mfa)
        assert page.status_code == 200 and "Set up two-step verification" in page.text
        found = SECRET.search(page.text)
        assert found, page.text
        secret = found.group(1).replace(" ", "")
        assert f"secret={secret}" in html.unescape(page.text)  # the otpauth:// link
        wrong = await b.submit(mfa, {"code": "000000"})
        assert wrong.status_code == 401 and "The code is not valid" in wrong.text
        assert SECRET.search(wrong.text).group(1).replace(" ", "") == secret  # type: ignore[union-attr]
        step = int(time.time()) // 30
        codes = await b.submit(mfa, {"code": pyotp.TOTP(secret).generate_otp(step)})
        assert codes.status_code == 200 and "Save your backup codes" in codes.text
        backup = CODE.findall(codes.text)
        assert len(backup) == 10
        assert passed(location_of(await b.submit(mfa, {})), t)
    # From now on the authenticator's code (or a backup code) is asked for.
    async with PortalBrowser() as b:
        mfa = await password_step(t, b, email)
        page = await b.get(mfa)
        assert "Enter the 6-digit code from your authenticator app" in page.text
        assert passed(location_of(await b.submit(f"{mfa}&method=backup", {"code": backup[0]})), t)

    await t.admin.issuers.update(t.issuer_id, {"settings": {"security": {"mfa_required": False}}})
    assert on_mfa_page((await sign_in(t, email))[1])  # the enrolled verifier is still asked for


async def test_organization_policy_requires_a_second_factor_of_its_members(tenant):
    t = tenant
    member, outsider = new_email("member"), new_email("outsider")
    member_id = await signed_up(t, member)
    await signed_up(t, outsider)
    orgs = t.admin.issuer(t.issuer_id).organizations
    org = await orgs.create({"name": "Strict Corp", "security": {"mfa_required": True}})
    await t.admin.issuer(t.issuer_id).organization(org.id).members.create({"member_id": member_id})
    assert on_mfa_page((await sign_in(t, member))[1])
    assert passed((await sign_in(t, outsider))[1], t)

    await orgs.update(org.id, {"security": {"mfa_required": False}})
    assert passed((await sign_in(t, member))[1], t)


async def test_a_required_user_whose_verifier_is_disabled_cannot_sign_in(tenant):
    t = tenant
    email = new_email("disabled")
    totp = await enrol_totp(t, await signed_up(t, email))
    await (
        t.admin.issuer(t.issuer_id)
        .user(totp.user_id)
        .verifiers.update(totp.verifier_id, {"status": "disabled"})
    )
    assert passed((await sign_in(t, email))[1], t)  # a disabled verifier is not asked for
    await t.admin.issuers.update(t.issuer_id, {"settings": {"security": {"mfa_required": True}}})
    async with PortalBrowser() as b:
        mfa = await password_step(t, b, email)
        page = await b.get(mfa)
    assert page.status_code == 403 and REQUIRED in page.text


async def test_a_session_opened_before_enrolment_does_not_skip_the_second_factor(tenant):
    t = tenant
    email = new_email("session")
    user_id = await signed_up(t, email)
    async with PortalBrowser() as b:
        assert passed(await password_step(t, b, email), t)  # an op session, no second factor
        assert b.cookie("authpi_session")
        await enrol_totp(t, user_id)
        again = location_of(await b.get(authorize_url(t)))
        assert urlsplit(again).path.endswith("/login"), again
        # Nor through the consent page of that authorization, past the sign-in it asks for.
        consent = again.replace("/login?", "/consent?")
        allowed = location_of(await b.submit(consent, {}, button="allow"))
        assert urlsplit(allowed).path.endswith("/login"), allowed


async def test_policies_accept_only_booleans(tenant):
    t = tenant
    with pytest.raises(ValidationError):
        await t.admin.issuers.update(
            t.issuer_id, {"settings": {"security": {"mfa_required": "yes"}}}
        )
    with pytest.raises(ValidationError):
        await t.admin.issuers.update(
            t.issuer_id, {"settings": {"security": {"trusted_device_ttl": 5}}}
        )
    with pytest.raises(ValidationError):
        await t.admin.issuer(t.issuer_id).organizations.create(
            {"name": "Loose", "security": {"mfa_required": 1}}
        )


async def test_accepting_an_invitation_signs_in_through_the_second_factor(tenant, mailbox):
    t = tenant
    email = new_email("invited")
    totp = await enrol_totp(t, await signed_up(t, email))
    org_id = await new_org(t)
    _, link = await invite(t, org_id, email, mailbox)
    async with PortalBrowser() as person:
        decide = (await person.page(link))[1]
        login = location_of(await person.send(decide, {"decision": "accept"}))
        mfa = location_of(await person.submit(login, {"email": email, "password": PASSWORD}))
        assert on_mfa_page(mfa), mfa
        assert person.cookie("authpi_session") is None  # not signed in before the code
        landed = location_of(await person.submit(mfa, {"code": totp.code(1)}))
        assert person.cookie("authpi_session") is not None
    assert urlsplit(landed).path == f"/{t.issuer_id}/login", landed
    assert await member_ids(t, org_id) == [totp.user_id]
