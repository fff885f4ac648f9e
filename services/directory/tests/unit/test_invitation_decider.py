"""The invitation part of the Organization decider (core-api.md 3.15) through DeciderSpec:
creation against the invitation setting, suspension, pending duplicates and members; edits,
resends and revocations of pending invitations only; and the answer through a link, which needs
the current token, an open invitation and, to accept, the invited address. The decider sees the
invitation's personal data only sealed (`pii`), and addresses only by their hash; an invitation
written before sealing is folded with its address's hash (`Upcasting`)."""

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
from authpi.crypto.envelope import Kek
from authpi.crypto.pii import PiiVault
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import (
    AnswerInvitation,
    CreateInvitation,
    ResendInvitation,
    RevokeInvitation,
    UpdateInvitation,
)
from authpi.directory.handlers.invitation_pii import Upcasting
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
EMAIL_HASH = "e" * 64  # what the handler computes: the address's username hash in the issuer
SEALED = "sealed-pii"  # the address, inviter and message under the invitation's key
DIGEST = "a" * 64
EXPIRES = 1_000_000


def spec(*given: Any) -> DeciderSpec:
    return DeciderSpec(organization).given(organization_created(scopes=["member", "owner"]), *given)


def create(**o: Any) -> CreateInvitation:
    base: dict[str, Any] = {
        "ref": REF, "invitation_id": "inv_1", "email_hash": EMAIL_HASH, "pii": SEALED,
        "scopes": ["member"], "token_sha256": DIGEST, "expires_at": EXPIRES, "now": 100,
    }  # fmt: skip
    return CreateInvitation(**{**base, **o})


def created(**o: Any) -> OrganizationInvitationCreated:
    base: dict[str, Any] = {
        "id": "inv_1", "org_id": "org_1", "issuer_id": "i_1", "email_hash": EMAIL_HASH,
        "pii": SEALED, "scopes": ["member"], "token_sha256": DIGEST, "expires_at": EXPIRES,
        "created_at": 100,
    }  # fmt: skip
    return OrganizationInvitationCreated(**{**base, **o})


def answer(**o: Any) -> AnswerInvitation:
    base: dict[str, Any] = {
        "org_id": "org_1", "invitation_id": "inv_1", "token_sha256": DIGEST, "accept": True,
        "now": 200, "user_id": "usr_1", "user_email_hash": EMAIL_HASH,
    }  # fmt: skip
    return AnswerInvitation(**{**base, **o})


def test_create_emits_created_with_the_sealed_data_and_the_address_hash_only():
    # `created()` leaves the clear fields (address, inviter, message) at None.
    spec().when(create(user_title="CTO")).then(created(user_title="CTO"))


def test_create_is_refused_when_invitations_are_disabled():
    disabled = organization_updated(invitation_enabled=False, changed=["invitation_enabled"])
    assert spec(disabled).when(create()).raises(Conflict).reason == "invitation.disabled"


def test_invitations_freeze_while_the_organization_is_suspended():
    for cmd in (
        create(invitation_id="inv_2", email_hash="f" * 64),
        UpdateInvitation(ref=REF, invitation_id="inv_1", now=150, message="x"),
        ResendInvitation(ref=REF, invitation_id="inv_1", token_sha256="b" * 64, now=150),
        RevokeInvitation(ref=REF, invitation_id="inv_1", now=150),
        answer(),
    ):
        refused = spec(created(), organization_suspended()).when(cmd).raises(Conflict)
        assert refused.reason == "organization.suspended"
    spec(created(), organization_suspended(), organization_reactivated()).when(answer()).then(
        OrganizationInvitationAccepted(
            id="inv_1", org_id="org_1", issuer_id="i_1", user_id="usr_1", scopes=["member"],
            accepted_at=200),
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
    cmd = UpdateInvitation(ref=REF, invitation_id="inv_1", now=150, pii="resealed",
                           metadata={"a": 1}, if_match='"100"')  # fmt: skip
    spec(created()).when(cmd).then(OrganizationInvitationUpdated(
        id="inv_1", org_id="org_1", issuer_id="i_1", pii="resealed", scopes=["member"],
        metadata={"a": 1}, changed=["metadata", "message"], updated_at=150))  # fmt: skip
    stale = UpdateInvitation(ref=REF, invitation_id="inv_1", now=150, pii="x", if_match='"1"')
    spec(created()).when(stale).raises(PreconditionFailed)
    # The same message again: the handler seals nothing, and nothing changed.
    spec(created()).when(UpdateInvitation(ref=REF, invitation_id="inv_1", now=150)).then()


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
        OrganizationInvitationDeclined(id="inv_1", org_id="org_1", issuer_id="i_1", declined_at=200)
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
            id="inv_1", org_id="org_1", issuer_id="i_1", user_id="usr_1", scopes=["owner"],
            accepted_at=200),
        member_joined(scopes=["owner"], user_title="CTO", joined_at=200),
    )  # fmt: skip


def test_a_used_link_is_refused():
    accepted = OrganizationInvitationAccepted(
        id="inv_1", org_id="org_1", issuer_id="i_1", user_id="usr_1", accepted_at=200
    )
    refused = spec(created(), accepted).when(answer(now=300)).raises(Conflict)
    assert refused.reason == "invitation.not_pending"


def test_an_expired_link_is_refused():
    refused = spec(created()).when(answer(now=EXPIRES)).raises(Conflict)
    assert refused.reason == "invitation.expired"


def test_another_address_cannot_accept():
    for digest in ("m" * 64, None, ""):
        refused = spec(created()).when(answer(user_email_hash=digest)).raises(Conflict)
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
        OrganizationInvitationDeclined(id="inv_1", org_id="org_1", issuer_id="i_1", declined_at=200)
    )


def legacy_created(**o: Any) -> OrganizationInvitationCreated:
    """An invitation as written before sealing: its address (and inviter, message) in clear."""
    base: dict[str, Any] = {
        "id": "inv_1", "org_id": "org_1", "issuer_id": "i_1", "email_invited": EMAIL,
        "inviter": {"name": "Alice"}, "message": "Join us", "scopes": ["member"],
        "token_sha256": DIGEST, "expires_at": EXPIRES, "created_at": 100,
    }  # fmt: skip
    return OrganizationInvitationCreated(**{**base, **o})


def test_an_invitation_written_before_sealing_is_folded_by_its_address_hash():
    vault = PiiVault(Kek(b"k" * 32), "unused_pii")
    digest = vault.username_hash("i_1", EMAIL)
    legacy = DeciderSpec(Upcasting(vault)).given(
        organization_created(scopes=["member"]), legacy_created()
    )
    refused = legacy.when(create(invitation_id="inv_2", email_hash=digest)).raises(Conflict)
    assert refused.reason == "invitation.pending_exists"
    legacy.when(answer(user_email_hash=digest)).then(
        OrganizationInvitationAccepted(
            id="inv_1", org_id="org_1", issuer_id="i_1", user_id="usr_1", scopes=["member"],
            accepted_at=200),
        member_joined(scopes=["member"], joined_at=200),
    )  # fmt: skip
    other = legacy.when(answer(user_email_hash=vault.username_hash("i_1", "x@example.com")))
    assert other.raises(Conflict).reason == "invitation.other_address"
    # Folded without the upcast, the legacy invitation matches no address at all.
    plain = spec(legacy_created()).when(answer(user_email_hash=digest)).raises(Conflict)
    assert plain.reason == "invitation.other_address"
