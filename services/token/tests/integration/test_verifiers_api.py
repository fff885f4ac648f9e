"""User verifiers and trusted devices through the official admin SDK's accessors
(`admin.issuer(id).user(uid).verifiers` / `.trusted_devices`; contract 4.24, 4.25): TOTP
enrolment in two steps with codes an authenticator app would show (RFC 6238), verification of
TOTP and backup codes, regeneration, rename and disable, deletion, ETags and `If-Match`, the
error classes the SDK raises, and what never leaves the platform (the secret after enrolment,
backup codes after they were shown)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)
from authpi_admin.generated.scopes.user_scope import UserScope

from authpi.token.domain.totp_codes import code_at, step_at

# Public APIs only: also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


def _admin(platform: Any) -> AuthPIAdmin:
    return AuthPIAdmin(
        api_key=(platform.api_key_id, platform.api_key_secret),
        account_id=platform.account_id,
        base_url=platform.api_url,
        retries=False,
    )


def now_step() -> int:
    return step_at(int(time.time() * 1000))


def current_code(secret: str) -> str:
    """What the person's authenticator app shows now."""
    return code_at(secret, now_step())


def next_code(secret: str) -> str:
    """The app's next code: a step after any code already used (accepted within the window)."""
    return code_at(secret, now_step() + 1)


@pytest.fixture
async def admin(platform):
    async with _admin(platform) as client:
        yield client


@dataclass
class Person:
    issuer_id: str
    user_id: str
    scope: UserScope

    @property
    def verifiers(self) -> Any:
        return self.scope.verifiers

    @property
    def trusted_devices(self) -> Any:
        return self.scope.trusted_devices


@pytest.fixture
async def person(admin):
    """A user of a new issuer, with the SDK's user scope."""
    issuer = await admin.issuers.create({"name": f"mfa-{secrets.token_hex(4)}"})
    user = await admin.issuer(issuer.id).users.create(
        {"username_type": "email", "username": f"ada-{secrets.token_hex(4)}@example.com"}
    )
    return Person(issuer.id, user.id, admin.issuer(issuer.id).user(user.id))


async def enrolled(user: Person) -> tuple[str, str, list[str]]:
    """(verifier id, secret, backup codes) of a TOTP verifier enrolled as a person would."""
    started = await user.verifiers.create({"type": "totp", "name": "Phone"})
    done = await user.verifiers.complete_enrollment(
        {"enrollment_id": started.enrollment_id, "code": current_code(started.secret)}
    )
    assert done.success and done.verifier_id and done.backup_codes
    return done.verifier_id, started.secret, done.backup_codes


async def test_totp_enrolment_shows_the_secret_once_and_confirms_with_a_first_code(person):
    started = await person.verifiers.create({"type": "totp", "name": "Phone"})
    assert started.enrollment_id and len(started.secret) == 32
    assert started.provisioning_uri.startswith("otpauth://totp/")
    assert f"secret={started.secret}" in started.provisioning_uri
    assert started.expires_at > int(time.time() * 1000)
    assert (await person.verifiers.list()).data == []  # nothing until a code confirms it

    wrong = await person.verifiers.complete_enrollment(
        {"enrollment_id": started.enrollment_id, "code": "000000"}
    )
    assert (wrong.success, wrong.verifier_id, wrong.error) == (False, None, "invalid_code")
    done = await person.verifiers.complete_enrollment(
        {"enrollment_id": started.enrollment_id, "code": current_code(started.secret)}
    )
    assert done.success and done.verifier_id and done.verifier_id.startswith("vrf_")
    assert done.backup_codes is not None and len(set(done.backup_codes)) == 10
    assert all(len(c) == 11 and c[5] == "-" for c in done.backup_codes)

    [listed] = (await person.verifiers.list()).data
    got = await person.verifiers.get(done.verifier_id)
    assert listed.model_dump() == got.model_dump()
    assert got.model_extra is not None
    fields = got.model_extra
    assert (fields["id"], fields["type"], fields["name"], fields["status"]) == (
        done.verifier_id, "totp", "Phone", "active",
    )  # fmt: skip
    assert fields["backup_codes"] == {"remaining": 10, "total": 10}
    assert fields["totp"] == {"algorithm": "SHA1", "digits": 6, "period": 30}
    shown = str(fields)
    assert started.secret not in shown and not any(c in shown for c in done.backup_codes)
    assert got._etag == f'"{fields["updated_at"] or fields["created_at"]}"'
    # The enrolment is used up.
    with pytest.raises(NotFoundError):
        await person.verifiers.complete_enrollment(
            {"enrollment_id": started.enrollment_id, "code": next_code(started.secret)}
        )


async def test_codes_verify_once_and_regenerate_replaces_backup_codes(person):
    verifier_id, secret, codes = await enrolled(person)
    totp = await person.verifiers.verify(verifier_id, {"code": next_code(secret)})
    assert (totp.success, totp.remaining) == (True, 10)
    backup = await person.verifiers.verify(verifier_id, {"code": codes[0].lower()})
    assert (backup.success, backup.remaining) == (True, 9)
    again = await person.verifiers.verify(verifier_id, {"code": codes[0], "type": "backup_code"})
    assert (again.success, again.error) == (False, "invalid_code")

    before = await person.verifiers.get(verifier_id)
    fresh = await person.verifiers.regenerate(verifier_id, if_match=before._etag)
    assert len(set(fresh.codes)) == 10 and not set(fresh.codes) & set(codes)
    old = await person.verifiers.verify(verifier_id, {"code": codes[1]})
    assert (old.success, old.error) == (False, "invalid_code")
    new = await person.verifiers.verify(verifier_id, {"code": fresh.codes[1]})
    assert (new.success, new.remaining) == (True, 9)
    with pytest.raises(PreconditionFailedError):
        await person.verifiers.regenerate(verifier_id, if_match=before._etag)


async def test_rename_disable_and_delete_follow_if_match(person):
    verifier_id, secret, _ = await enrolled(person)
    got = await person.verifiers.get(verifier_id)
    renamed = await person.verifiers.update(verifier_id, {"name": "Work phone"}, if_match=got._etag)
    assert renamed.model_extra is not None and renamed.model_extra["name"] == "Work phone"
    assert renamed._etag != got._etag
    with pytest.raises(PreconditionFailedError) as stale:
        await person.verifiers.update(verifier_id, {"name": "Old"}, if_match=got._etag)
    assert stale.value.current_etag == renamed._etag

    disabled = await person.verifiers.update(verifier_id, {"status": "disabled"})
    assert disabled.model_extra is not None and disabled.model_extra["status"] == "disabled"
    with pytest.raises(ConflictError):  # a disabled verifier accepts no code
        await person.verifiers.verify(verifier_id, {"code": next_code(secret)})
    with pytest.raises(ValidationError):
        await person.verifiers.update(verifier_id, {"status": "gone"})

    with pytest.raises(PreconditionFailedError):
        await person.verifiers.delete(verifier_id, if_match=renamed._etag)
    await person.verifiers.delete(verifier_id, if_match=disabled._etag)
    with pytest.raises(NotFoundError):
        await person.verifiers.get(verifier_id)
    assert (await person.verifiers.list()).data == []
    await enrolled(person)  # the user may enrol again


async def test_verifier_errors_map_to_the_sdk_classes(platform, admin, person):
    await enrolled(person)
    with pytest.raises(ConflictError):  # one TOTP verifier per user
        await person.verifiers.create({"type": "totp"})
    with pytest.raises(ValidationError):
        await person.verifiers.create({"type": "sms"})
    with pytest.raises(ValidationError):
        await person.verifiers.complete_enrollment({"code": "123456"})
    with pytest.raises(ValidationError):
        await person.verifiers.complete_enrollment()
    with pytest.raises(NotFoundError):
        await person.verifiers.get("vrf_unknown")
    with pytest.raises(NotFoundError):
        await person.verifiers.complete_enrollment({"enrollment_id": "enr_x", "code": "123456"})
    with pytest.raises(NotFoundError):
        await admin.issuer(person.issuer_id).user("usr_unknown").verifiers.list()
    key = await admin.api_keys.create(
        {"name": "users only", "restrictions": {"scopes": ["issuers.users:read"]}}
    )
    async with AuthPIAdmin(
        api_key=(key.id, key.secret_plain), account_id=platform.account_id,
        base_url=platform.api_url, retries=False,
    ) as weak:  # fmt: skip
        with pytest.raises(ForbiddenError):
            await weak.issuer(person.issuer_id).user(person.user_id).verifiers.list()


async def test_trusted_devices_list_revoke_one_and_revoke_all(platform, person):
    devices = person.trusted_devices
    assert (await devices.list()).data == []
    empty = await devices.revoke_all()
    assert empty.revoked_count == 0
    first = await devices.create({"name": "Office laptop", "user_agent": "Mozilla/5.0 Firefox"})
    second = await devices.create({"name": "Home", "fingerprint": "fp-home"})
    assert first.device_id.startswith("dev_") and first.expires_at > int(time.time() * 1000)
    listed = {d.id: d for d in (await devices.list()).data}
    assert set(listed) == {first.device_id, second.device_id}
    home = listed[second.device_id]
    assert (home.name, home.fingerprint, home.user_agent, home.last_used_at) == (
        "Home", "fp-home", None, None,
    )  # fmt: skip
    with pytest.raises(PreconditionFailedError):  # the devices changed since
        await devices.revoke_all(if_match=empty._etag)
    with pytest.raises(PreconditionFailedError):
        await devices.delete(first.device_id, if_match='"1"')
    await devices.delete(first.device_id, if_match=first._etag)
    with pytest.raises(NotFoundError):
        await devices.delete(first.device_id)
    with pytest.raises(ValidationError):
        await devices.create({"expires_at": 1})

    async with httpx.AsyncClient(
        auth=(platform.api_key_id, platform.api_key_secret), timeout=30
    ) as http:
        path = (
            f"/v1/accounts/{platform.account_id}/issuers/{person.issuer_id}"
            f"/users/{person.user_id}/trusted-devices"
        )
        raw = await http.get(f"{platform.api_url}{path}")
    assert raw.status_code == 200 and raw.json()["has_more"] is False
    revoked = await devices.revoke_all(if_match=raw.headers["etag"])
    assert revoked.revoked_count == 1
    assert (await devices.list()).data == []


async def test_idempotency_keys_replay_the_enrolment_steps(person):
    key = secrets.token_hex(8)
    started = await person.verifiers.create({"type": "totp"}, idempotency_key=key)
    again = await person.verifiers.create({"type": "totp"}, idempotency_key=key)
    assert (again.enrollment_id, again.secret) == (started.enrollment_id, started.secret)
    body = {"enrollment_id": started.enrollment_id, "code": current_code(started.secret)}
    done = await person.verifiers.complete_enrollment(body, idempotency_key=key + "-done")
    replayed = await person.verifiers.complete_enrollment(body, idempotency_key=key + "-done")
    assert done.success and replayed.model_dump() == done.model_dump()
    assert len((await person.verifiers.list()).data) == 1
