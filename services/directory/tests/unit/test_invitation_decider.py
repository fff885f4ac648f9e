"""The invitation part of the Organization decider (core-api.md 3.15) through DeciderSpec:
creation against the invitation setting, suspension, pending duplicates and members; edits,
resends and revocations of pending invitations only; and the answer through a link, which needs
the current token, an open invitation and, to accept, the invited address."""

from __future__ import annotations

from typing import Any

from authpi.contracts.directory import (
    OrganizationInvitationAccepted,
    OrganizationInvitationCreated,
    OrganizationInvitationDeclined,
    OrganizationInvitationDeleted,
    OrganizationInvitationResent,
    OrganizationInvitationUpdated,
)
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import (
    AnswerInvitation,
    CreateInvitation,
    ResendInvitation,
    RevokeInvitation,
    UpdateInvitation,
)
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    REF,
    member_joined,
    organization_created,
    organization_reactivated,
    organization_suspended,
    organization_updated,
)

EMAIL = "dana@example.com"
DIGEST = "a" * 64
EXPIRES = 1_000_000


def spec(*given: Any) -> DeciderSpec:
    return DeciderSpec(organization).given(organization_created(scopes=["member", "owner"]), *given)


def create(**o: Any) -> CreateInvitation:
    base: dict[str, Any] = {
        "ref": REF, "invitation_id": "inv_1", "email": EMAIL, "scopes": ["member"],
        "token_sha256": DIGEST, "expires_at": EXPIRES, "now": 100,
    }  # fmt: skip
    return CreateInvitation(**{**base, **o})


def created(**o: Any) -> OrganizationInvitationCreated:
    base: dict[str, Any] = {
        "id": "inv_1", "org_id": "org_1", "issuer_id": "i_1", "email_invited": EMAIL,
        "scopes": ["member"], "token_sha256": DIGEST, "expires_at": EXPIRES, "created_at": 100,
    }  # fmt: skip
    return OrganizationInvitationCreated(**{**base, **o})


def answer(**o: Any) -> AnswerInvitation:
    base: dict[str, Any] = {
        "org_id": "org_1", "invitation_id": "inv_1", "token_sha256": DIGEST, "accept": True,
        "now": 200, "user_id": "usr_1", "user_email": EMAIL,
    }  # fmt: skip
    return AnswerInvitation(**{**base, **o})


def test_create_emits_created():
    spec().when(create(user_title="CTO", inviter={"name": "Alice"})).then(
        created(user_title="CTO", inviter={"name": "Alice"})
    )


def test_create_is_refused_when_invitations_are_disabled():
    disabled = organization_updated(invitation_enabled=False, changed=["invitation_enabled"])
    assert spec(disabled).when(create()).raises(Conflict).reason == "invitation.disabled"


def test_invitations_freeze_while_the_organization_is_suspended():
    for cmd in (
        create(invitation_id="inv_2", email="x@example.com"),
        UpdateInvitation(ref=REF, invitation_id="inv_1", now=150, message="x"),
        ResendInvitation(ref=REF, invitation_id="inv_1", token_sha256="b" * 64, now=150),
        RevokeInvitation(ref=REF, invitation_id="inv_1", now=150),
        answer(),
    ):
        refused = spec(created(), organization_suspended()).when(cmd).raises(Conflict)
        assert refused.reason == "organization.suspended"
    spec(created(), organization_suspended(), organization_reactivated()).when(answer()).then(
        OrganizationInvitationAccepted(
            id="inv_1", org_id="org_1", issuer_id="i_1", user_id="usr_1", email_invited=EMAIL,
            scopes=["member"], accepted_at=200),
        member_joined(scopes=["member"], joined_at=200),
    )  # fmt: skip


def test_a_pending_invitation_for_the_address_blocks_another_until_it_expires():
    cmd = create(invitation_id="inv_2")
    assert spec(created()).when(cmd).raises(Conflict).reason == "invitation.pending_exists"
    spec(created()).when(create(invitation_id="inv_2", now=EXPIRES)).then(
        created(id="inv_2", created_at=EXPIRES)
    )


def test_an_active_member_cannot_be_invited():
    cmd = create(user_id_invited="usr_1")
    assert spec(member_joined()).when(cmd).raises(Conflict).reason == "invitation.already_member"


def test_scopes_come_from_the_organization_vocabulary():
    spec().when(create(scopes=["admin"])).raises(Unprocessable)
    spec().when(create(scopes=[])).raises(Unprocessable)


def test_update_names_what_changed_and_checks_if_match():
    cmd = UpdateInvitation(ref=REF, invitation_id="inv_1", now=150, message="hi",
                           metadata={"a": 1}, if_match='"100"')  # fmt: skip
    spec(created()).when(cmd).then(OrganizationInvitationUpdated(
        id="inv_1", org_id="org_1", issuer_id="i_1", message="hi", scopes=["member"],
        metadata={"a": 1}, changed=["message", "metadata"], updated_at=150))  # fmt: skip
    stale = UpdateInvitation(ref=REF, invitation_id="inv_1", now=150, message="x", if_match='"1"')
    spec(created()).when(stale).raises(PreconditionFailed)


def test_resend_replaces_the_digest_of_a_pending_unexpired_invitation():
    cmd = ResendInvitation(ref=REF, invitation_id="inv_1", token_sha256="b" * 64, now=150)
    resent = OrganizationInvitationResent(
        id="inv_1", org_id="org_1", issuer_id="i_1", token_sha256="b" * 64, sent_at=150
    )
    spec(created()).when(cmd).then(resent)
    late = ResendInvitation(ref=REF, invitation_id="inv_1", token_sha256="b" * 64, now=EXPIRES)
    assert spec(created()).when(late).raises(Conflict).reason == "invitation.expired"


def test_the_previous_link_stops_working_after_a_resend():
    resent = OrganizationInvitationResent(
        id="inv_1", org_id="org_1", issuer_id="i_1", token_sha256="b" * 64, sent_at=150
    )
    spec(created(), resent).when(answer()).raises(NotFound)
    spec(created(), resent).when(answer(token_sha256="b" * 64, accept=False)).then(
        OrganizationInvitationDeclined(
            id="inv_1", org_id="org_1", issuer_id="i_1", email_invited=EMAIL, declined_at=200
        )
    )


def test_revoke_ends_a_pending_invitation_once():
    cmd = RevokeInvitation(ref=REF, invitation_id="inv_1", now=150)
    spec(created()).when(cmd).then(
        OrganizationInvitationDeleted(id="inv_1", org_id="org_1", issuer_id="i_1", revoked_at=150)
    )
    revoked = OrganizationInvitationDeleted(
        id="inv_1", org_id="org_1", issuer_id="i_1", revoked_at=150
    )
    assert spec(created(), revoked).when(cmd).raises(Conflict).reason == "invitation.not_pending"
    assert spec(created(), revoked).when(answer()).raises(Conflict).reason == (
        "invitation.not_pending"
    )


def test_accept_adds_the_membership_with_the_invitation_scopes_and_title():
    spec(created(scopes=["owner"], user_title="CTO")).when(answer()).then(
        OrganizationInvitationAccepted(
            id="inv_1", org_id="org_1", issuer_id="i_1", user_id="usr_1", email_invited=EMAIL,
            scopes=["owner"], accepted_at=200),
        member_joined(scopes=["owner"], user_title="CTO", joined_at=200),
    )  # fmt: skip


def test_a_used_link_is_refused():
    accepted = OrganizationInvitationAccepted(
        id="inv_1", org_id="org_1", issuer_id="i_1", user_id="usr_1", email_invited=EMAIL,
        accepted_at=200,
    )  # fmt: skip
    refused = spec(created(), accepted).when(answer(now=300)).raises(Conflict)
    assert refused.reason == "invitation.not_pending"


def test_an_expired_link_is_refused():
    refused = spec(created()).when(answer(now=EXPIRES)).raises(Conflict)
    assert refused.reason == "invitation.expired"


def test_another_address_cannot_accept():
    for email in ("mallory@example.com", None):
        refused = spec(created()).when(answer(user_email=email)).raises(Conflict)
        assert refused.reason == "invitation.other_address"


def test_a_wrong_token_learns_nothing():
    spec(created()).when(answer(token_sha256="c" * 64)).raises(NotFound)
    spec(created()).when(answer(invitation_id="inv_9")).raises(NotFound)
    spec().when(answer()).raises(NotFound)


def test_accept_is_refused_once_the_organization_takes_no_invitations_but_decline_is_not():
    disabled = organization_updated(invitation_enabled=False, changed=["invitation_enabled"])
    refused = spec(created(), disabled).when(answer()).raises(Conflict)
    assert refused.reason == "invitation.disabled"
    spec(created(), disabled).when(answer(accept=False)).then(
        OrganizationInvitationDeclined(
            id="inv_1", org_id="org_1", issuer_id="i_1", email_invited=EMAIL, declined_at=200
        )
    )
