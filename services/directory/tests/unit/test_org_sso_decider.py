"""Organization SSO on the organization's stream (core-api.md 3.16): domains added with their TXT
challenge, verified only when DNS publishes this organization's token, removed (and released when
the organization's deletion cascade ends); the secret's digest; the `sso` object's events."""

from __future__ import annotations

from authpi.contracts.directory import (
    OrganizationDeleted,
    OrganizationSsoDisabled,
    OrganizationSsoDomainCreated,
    OrganizationSsoDomainDeleted,
    OrganizationSsoDomainVerified,
    OrganizationSsoEnabled,
    OrganizationSsoUpdated,
)
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import (
    AddSsoDomain,
    RemoveSsoDomain,
    RotateSsoSecret,
    VerifySsoDomain,
)
from authpi.directory.domain.org_sso import challenge_name, challenge_token
from authpi.errors import Conflict, NotFound, PreconditionFailed
from authpi.testing.decider import DeciderSpec
from services.directory.tests.factories import (
    REF,
    finish_organization_deletion,
    organization_created,
    organization_deleting,
    organization_updated,
    update_organization,
)

TOKEN = challenge_token("i_1", "org_1", "acme.com")
CREATED = OrganizationSsoDomainCreated(
    org_id="org_1", issuer_id="i_1", domain="acme.com", txt_record_name="_authpi-sso.acme.com",
    txt_record_value=TOKEN, created_at=20,
)  # fmt: skip


def spec() -> DeciderSpec:
    return DeciderSpec(organization)


def verify(published: frozenset[str]) -> VerifySsoDomain:
    return VerifySsoDomain(ref=REF, domain="acme.com", published=published, now=30)


def test_adding_a_domain_names_the_txt_record_to_publish():
    spec().given(organization_created()).when(
        AddSsoDomain(ref=REF, domain="acme.com", now=20)
    ).then(CREATED)
    assert challenge_name("acme.com") == CREATED.txt_record_name


def test_the_challenge_is_bound_to_one_organization_and_one_issuer():
    assert TOKEN != challenge_token("i_1", "org_2", "acme.com")
    assert TOKEN != challenge_token("i_2", "org_1", "acme.com")
    assert TOKEN != challenge_token("i_1", "org_1", "acme.org")


def test_adding_a_domain_twice_is_a_conflict():
    s = spec().given(organization_created(), CREATED)
    s.when(AddSsoDomain(ref=REF, domain="acme.com", now=30)).raises(Conflict)


def test_a_stale_if_match_is_refused():
    s = spec().given(organization_created())
    s.when(AddSsoDomain(ref=REF, domain="acme.com", now=20, if_match='"1"')).raises(
        PreconditionFailed
    )


def test_verification_needs_this_organizations_token_in_dns():
    s = spec().given(organization_created(), CREATED)
    s.when(verify(frozenset())).then()
    s.when(verify(frozenset({challenge_token("i_1", "org_2", "acme.com")}))).then()
    s.when(verify(frozenset({"other", TOKEN}))).then(
        OrganizationSsoDomainVerified(org_id="org_1", issuer_id="i_1", domain="acme.com",
                                      verified_at=30)
    )  # fmt: skip


def test_a_verified_domain_stays_verified_without_a_new_event():
    verified = OrganizationSsoDomainVerified(
        org_id="org_1", issuer_id="i_1", domain="acme.com", verified_at=25
    )
    spec().given(organization_created(), CREATED, verified).when(verify(frozenset())).then()


def test_unknown_domains_are_not_found():
    s = spec().given(organization_created())
    s.when(verify(frozenset({TOKEN}))).raises(NotFound)
    s.when(RemoveSsoDomain(ref=REF, domain="acme.com", now=30)).raises(NotFound)


def test_removal_and_the_end_of_the_deletion_cascade_delete_domains():
    deleted = OrganizationSsoDomainDeleted(
        org_id="org_1", issuer_id="i_1", domain="acme.com", deleted_at=30
    )
    spec().given(organization_created(), CREATED).when(
        RemoveSsoDomain(ref=REF, domain="acme.com", now=30)
    ).then(deleted)
    spec().given(organization_created(), CREATED, organization_deleting(updated_at=25)).when(
        finish_organization_deletion(now=30)
    ).then(deleted, OrganizationDeleted(id="org_1", issuer_id="i_1", deleted_at=30))


def test_rotation_records_the_digest_only():
    spec().given(organization_created()).when(
        RotateSsoSecret(ref=REF, secret_sha256="ab" * 32, now=30)
    ).then(
        OrganizationSsoUpdated(org_id="org_1", issuer_id="i_1", sso={}, changed=["secret"],
                               secret_sha256="ab" * 32, updated_at=30)
    )  # fmt: skip


def test_patching_the_sso_object_enables_updates_and_disables():
    on = {"enabled": True, "sso_only": False}
    spec().given(organization_created()).when(update_organization(changes={"sso": on})).then(
        organization_updated(changed=["sso"], sso=on, updated_at=50),
        OrganizationSsoEnabled(org_id="org_1", issuer_id="i_1", sso=on, changed=["enabled",
                               "sso_only"], updated_at=50),
    )  # fmt: skip
    only = {"enabled": True, "sso_only": True}
    s = spec().given(organization_created(sso=on))
    s.when(update_organization(changes={"sso": only})).then(
        organization_updated(changed=["sso"], sso=only, updated_at=50),
        OrganizationSsoUpdated(org_id="org_1", issuer_id="i_1", sso=only, changed=["sso_only"],
                               updated_at=50),
    )  # fmt: skip
    s.when(update_organization(changes={"sso": {}})).then(
        organization_updated(changed=["sso"], sso={}, updated_at=50),
        OrganizationSsoDisabled(org_id="org_1", issuer_id="i_1", sso={},
                                changed=["enabled", "sso_only"], updated_at=50),
    )  # fmt: skip
