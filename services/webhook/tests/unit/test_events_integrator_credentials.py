"""The IntegratorCredential decider: issue once (a bcrypt digest only, a usable NATS user, an
account id), revoke for good (repeat-safe), another account's credential is not found."""

from __future__ import annotations

import pytest

from authpi.contracts.webhook import IntegratorCredentialIssued, IntegratorCredentialRevoked
from authpi.errors import Conflict, InvalidRequest, NotFound
from authpi.testing.decider import DeciderSpec
from authpi.webhook.domain import integrator_credential
from authpi.webhook.domain.commands import IssueIntegratorCredential, RevokeIntegratorCredential

T0 = 1_700_000_000_000
ACC = "acc_0a1b2c"
OTHER = "acc_9z8y7x"
CRED = "intc_0k3m9"
USER = "int_Ab3dE6gH9jK2mN4p"
DIGEST = "$2b$11$abcdefghijklmnopqrstuu6f7X8K2oWbq7n2Y1r6jz5yC0cZb9Xm"


@pytest.fixture
def spec() -> DeciderSpec:
    return DeciderSpec(integrator_credential)


def issue(**overrides: object) -> IssueIntegratorCredential:
    fields: dict[str, object] = {
        "credential_id": CRED, "account_id": ACC, "user": USER, "password_bcrypt": DIGEST,
        "name": "crm", "now": T0,
    }  # fmt: skip
    return IssueIntegratorCredential(**{**fields, **overrides})  # type: ignore[arg-type]


def revoke(account_id: str | None = ACC, now: int = T0 + 5) -> RevokeIntegratorCredential:
    return RevokeIntegratorCredential(credential_id=CRED, account_id=account_id, now=now)


ISSUED = IntegratorCredentialIssued(
    id=CRED, account_id=ACC, user=USER, password_bcrypt=DIGEST, name="crm", issued_at=T0
)
REVOKED = IntegratorCredentialRevoked(id=CRED, account_id=ACC, user=USER, revoked_at=T0 + 5)


def test_issue_records_the_user_and_the_digest(spec):
    spec.given().when(issue()).then(ISSUED)


def test_issue_twice_conflicts(spec):
    spec.given(ISSUED).when(issue()).raises(Conflict)
    spec.given(ISSUED, REVOKED).when(issue()).raises(Conflict)


def test_issue_refuses_a_password_in_clear(spec):
    spec.given().when(issue(password_bcrypt="hunter2-in-clear")).raises(InvalidRequest)


BAD_USERS = ["int_a.b", "int_>", "int_*", "usr_abc", "int_", "int_" + "a" * 28]


@pytest.mark.parametrize("user", BAD_USERS)
def test_issue_refuses_a_user_that_is_no_subject_token(spec, user):
    spec.given().when(issue(user=user)).raises(InvalidRequest)


@pytest.mark.parametrize("account", ["acc_a.b", "acc_>", "org_abc", ""])
def test_issue_refuses_what_is_not_an_account_id(spec, account):
    spec.given().when(issue(account_id=account)).raises(InvalidRequest)


def test_issue_refuses_an_overlong_name(spec):
    spec.given().when(issue(name="x" * 201)).raises(InvalidRequest)


def test_revoke_ends_the_credential(spec):
    spec.given(ISSUED).when(revoke()).then(REVOKED)


def test_revoke_by_the_operator_needs_no_account(spec):
    spec.given(ISSUED).when(revoke(account_id=None)).then(REVOKED)


def test_revoke_again_changes_nothing(spec):
    spec.given(ISSUED, REVOKED).when(revoke(now=T0 + 9)).then()


def test_revoke_of_another_accounts_credential_is_not_found(spec):
    spec.given(ISSUED).when(revoke(account_id=OTHER)).raises(NotFound)
    spec.given(ISSUED, REVOKED).when(revoke(account_id=OTHER)).raises(NotFound)


def test_revoke_of_nothing_is_not_found(spec):
    spec.given().when(revoke()).raises(NotFound)


def test_evolve_ignores_a_revocation_before_issue():
    state = integrator_credential.evolve(integrator_credential.INITIAL, REVOKED)
    assert state == integrator_credential.Absent()
