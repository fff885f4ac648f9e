"""Attacks on the second factor of the hosted portal, over HTTP only, each against a person who
signed up on the portal and whose TOTP verifier was enrolled through the Core API: a TOTP code
replayed inside its window, guessing codes until the factor locks, a backup code used twice, and
another person's trusted-device cookie. Each attack is also checked to have been possible to
mount (the same step with the right input passes), so that a refusal means what it says."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from authpi.platform.testing.login import LoginTenant, PortalBrowser, login_tenant, new_email
from authpi.platform.testing.mfa import (
    enrol_totp,
    location_of,
    passed,
    password_step,
    signed_up,
)

LOCKED = "Too many failed attempts"


@pytest.fixture
async def tenant(platform):
    made = await login_tenant(platform, name="mfa-attacks")
    yield made
    await made.admin.close()


def plant(b: PortalBrowser, t: LoginTenant, device: str) -> None:
    """Put a trusted-device cookie into a browser, as the portal would have set it."""
    host = urlsplit(t.issuer_url).hostname or ""
    b.http.cookies.set("authpi_device", device, domain=host, path=f"/{t.issuer_id}")


async def person(t: LoginTenant):
    email = new_email("mfa")
    return email, await enrol_totp(t, await signed_up(t, email))


async def test_totp_code_replayed_inside_its_window_is_refused(tenant):
    t = tenant
    email, totp = await person(t)
    code = totp.code(steps_ahead=1)
    async with PortalBrowser() as first:
        mfa = await password_step(t, first, email)
        assert mfa.split("?")[0].endswith("/mfa"), mfa
        assert passed(location_of(await first.submit(mfa, {"code": code})), t)
    async with PortalBrowser() as second:  # the code seen over a shoulder, or phished
        mfa = await password_step(t, second, email)
        replayed = await second.submit(mfa, {"code": code})
    assert replayed.status_code == 401, replayed.text
    assert "This code was already used" in replayed.text
    # The Core API says the same of it.
    verifiers = t.admin.issuer(t.issuer_id).user(totp.user_id).verifiers
    checked = await verifiers.verify(totp.verifier_id, {"code": code})
    assert (checked.success, checked.error) == (False, "code_reused")


async def test_guessing_totp_codes_locks_the_second_factor(tenant):
    t = tenant
    email, totp = await person(t)
    right = totp.code(steps_ahead=1)
    wrong = [c for c in (f"{n:06d}" for n in range(100, 120)) if c != right][:5]
    async with PortalBrowser() as b:
        mfa = await password_step(t, b, email)
        answers = [await b.submit(mfa, {"code": guess}) for guess in wrong]
        assert [a.status_code for a in answers] == [401, 401, 401, 401, 403]
        assert LOCKED in answers[-1].text and LOCKED not in answers[-2].text
        refused = await b.submit(mfa, {"code": right})  # even the right code, while locked
    assert refused.status_code == 403 and LOCKED in refused.text
    verifiers = t.admin.issuer(t.issuer_id).user(totp.user_id).verifiers
    checked = await verifiers.verify(totp.verifier_id, {"code": right})
    assert (checked.success, checked.error) == (False, "locked")


async def test_backup_code_works_once(tenant):
    t = tenant
    email, totp = await person(t)
    backup = totp.backup_codes[0]
    async with PortalBrowser() as first:
        mfa = await password_step(t, first, email)
        answer = await first.submit(f"{mfa}&method=backup", {"code": backup})
        assert passed(location_of(answer), t)
    async with PortalBrowser() as second:
        mfa = await password_step(t, second, email)
        again = await second.submit(f"{mfa}&method=backup", {"code": backup})
        assert again.status_code == 401
        assert "This backup code is not valid, or it was already used." in again.text
        other = await second.submit(f"{mfa}&method=backup", {"code": totp.backup_codes[1]})
        assert passed(location_of(other), t)


async def test_trusted_device_cookie_of_another_user_does_not_skip_the_challenge(tenant):
    t = tenant
    alice_email, alice = await person(t)
    bob_email, bob = await person(t)
    async with PortalBrowser() as alices:
        mfa = await password_step(t, alices, alice_email)
        trusted = await alices.submit(mfa, {"code": alice.code(steps_ahead=1), "trust": "on"})
        assert passed(location_of(trusted), t)
        device = alices.cookie("authpi_device")
        assert device is not None and device.startswith("dev_")
    # Alice's own cookie, in a fresh browser of hers: no challenge.
    async with PortalBrowser() as again:
        plant(again, t, device)
        assert passed(await password_step(t, again, alice_email), t)
    # The same cookie in Bob's browser: Bob is still asked for his own code.
    async with PortalBrowser() as bobs:
        plant(bobs, t, device)
        asked = await password_step(t, bobs, bob_email)
        assert asked.split("?")[0].endswith("/mfa"), asked
        assert passed(location_of(await bobs.submit(asked, {"code": bob.code(1)})), t)
    # A forged cookie naming Alice's device with another secret: asked too.
    forged = device.split(".")[0] + ".not-the-secret"
    async with PortalBrowser() as forger:
        plant(forger, t, forged)
        assert (await password_step(t, forger, alice_email)).split("?")[0].endswith("/mfa")
