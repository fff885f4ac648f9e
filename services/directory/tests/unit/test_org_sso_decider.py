"""Organization SSO on the organization's stream (core-api.md 3.16): domains added with their TXT
challenge, verified only when DNS publishes this organization's token, removed (and released when
the organization's deletion cascade ends); the wrapped secret; the `sso` object's validation and
events; memberships through an SSO sign-in."""

from __future__ import annotations

from typing import Any

from authpi.contracts.directory import (
    OrganizationDeleted,
    OrganizationMembershipCreated,
    OrganizationSsoDisabled,
    OrganizationSsoDomainCreated,
    OrganizationSsoDomainDeleted,
    OrganizationSsoDomainVerified,
    OrganizationSsoEnabled,
    OrganizationSsoUpdated,
    OrganizationSuspended,
)
from authpi.directory.domain import organization
from authpi.directory.domain.commands.organization import (
    AddSsoDomain,
    CreateOrganization,
    JoinThroughSso,
    Profile,
    RemoveSsoDomain,
    RotateSsoSecret,
    SsoSecretChange,
    VerifySsoDomain,
)
from authpi.directory.domain.org_sso import challenge_name, challenge_token
from authpi.directory.domain.org_sso_config import SsoConfig, as_object, stored
from authpi.errors import Conflict, NotFound, PreconditionFailed, Unprocessable
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


def test_rotation_carries_the_wrapped_secret_and_its_digest():
    secret = SsoSecretChange(sealed="k1:wrapped", sha256="ab" * 32)
    spec().given(organization_created()).when(
        RotateSsoSecret(ref=REF, secret=secret, now=30)
    ).then(
        OrganizationSsoUpdated(org_id="org_1", issuer_id="i_1",
                               sso=canonical(client_secret_set=True), changed=["client_secret"],
                               secret_sha256="ab" * 32, client_secret_sealed="k1:wrapped",
                               updated_at=30)
    )  # fmt: skip


def canonical(**values: Any) -> dict[str, Any]:
    return as_object(SsoConfig(**values))


UPSTREAM = {"issuer_url": "https://idp.acme.com", "client_id": "authpi"}
SECRET = SsoSecretChange(sealed="k1:wrapped", sha256="cd" * 32)


def test_patching_the_sso_object_enables_updates_and_disables():
    on = canonical(enabled=True, client_secret_set=True, **UPSTREAM)
    enable = update_organization(changes={"sso": {"enabled": True, **UPSTREAM}}, sso_secret=SECRET)
    spec().given(organization_created()).when(enable).then(
        organization_updated(changed=["sso"], sso=on, updated_at=50),
        OrganizationSsoEnabled(org_id="org_1", issuer_id="i_1", sso=on,
                               changed=["client_id", "client_secret", "client_secret_set",
                                        "enabled", "issuer_url"],
                               secret_sha256="cd" * 32, client_secret_sealed="k1:wrapped",
                               updated_at=50),
    )  # fmt: skip
    only = {**on, "sso_only": True}
    s = spec().given(organization_created(sso=on))
    s.when(update_organization(changes={"sso": {"sso_only": True}})).then(
        organization_updated(changed=["sso"], sso=only, updated_at=50),
        OrganizationSsoUpdated(org_id="org_1", issuer_id="i_1", sso=only, changed=["sso_only"],
                               updated_at=50),
    )  # fmt: skip
    off = {**on, "enabled": False}
    s.when(update_organization(changes={"sso": {"enabled": False}})).then(
        organization_updated(changed=["sso"], sso=off, updated_at=50),
        OrganizationSsoDisabled(org_id="org_1", issuer_id="i_1", sso=off, changed=["enabled"],
                                updated_at=50),
    )  # fmt: skip
    # A new secret alone changes no field of the object: its own event still carries it.
    s.when(update_organization(sso_secret=SECRET)).then(
        OrganizationSsoUpdated(org_id="org_1", issuer_id="i_1", sso=on, changed=["client_secret"],
                               secret_sha256="cd" * 32, client_secret_sealed="k1:wrapped",
                               updated_at=50),
    )  # fmt: skip


def test_creating_with_sso_emits_its_configuration_event():
    on = canonical(enabled=True, token_endpoint_auth_method="none", **UPSTREAM)
    profile = Profile(name="Acme", sso={"enabled": True, "token_endpoint_auth_method": "none",
                                        **UPSTREAM})  # fmt: skip
    spec().given().when(CreateOrganization(ref=REF, profile=profile, now=10)).then(
        organization_created(sso=on),
        OrganizationSsoEnabled(org_id="org_1", issuer_id="i_1", sso=on,
                               changed=["client_id", "enabled", "issuer_url",
                                        "token_endpoint_auth_method"], updated_at=10),
    )  # fmt: skip


def _refused(changes: dict[str, Any], field: str, code: str, **cmd: Any) -> None:
    spec().given(organization_created()).when(
        update_organization(changes={"sso": changes}, **cmd)
    ).raises(Unprocessable)
    try:
        organization.decide(
            update_organization(changes={"sso": changes}, **cmd),
            organization.evolve(organization.INITIAL, organization_created()),
        )
    except Unprocessable as exc:
        assert [(f.field, f.code) for f in exc.fields] == [(field, code)], exc.fields
    else:
        raise AssertionError("not refused")


def test_enabling_needs_an_upstream_and_a_secret():
    _refused({"enabled": True}, "sso.issuer_url", "required")
    _refused({"enabled": True, "issuer_url": "https://idp.acme.com"}, "sso.client_id", "required")
    _refused({"enabled": True, **UPSTREAM}, "sso.client_secret", "required")
    _refused({"sso_only": True}, "sso.sso_only", "invalid_value")
    _refused({"scopes": ["email"]}, "sso.scopes", "invalid_value")


def test_issuer_urls_are_https_unless_the_deployment_allows_insecure_ones():
    _refused({"issuer_url": "http://idp.acme.com"}, "sso.issuer_url", "insecure_url")
    for bad in (
        "ftp://idp.acme.com",
        "https://",
        "https://u:p@idp.acme.com",
        "https://idp.acme.com/?tenant=1",
        "https://idp.acme.com/#x",
        "https://a b.com",
    ):
        _refused({"issuer_url": bad}, "sso.issuer_url", "invalid_value")  # fmt: skip
    allowed = update_organization(
        changes={"sso": {"issuer_url": "http://127.0.0.1:9000"}}, allow_insecure_sso=True
    )
    events = organization.decide(
        allowed, organization.evolve(organization.INITIAL, organization_created())
    )
    assert events[0].sso["issuer_url"] == "http://127.0.0.1:9000"  # type: ignore[attr-defined]


def test_an_sso_object_stored_before_validation_is_read_leniently():
    legacy = {"enabled": True, "connection_type": "saml", "domains": ["acme.com"], "scopes": 3}
    assert stored(legacy) == SsoConfig(enabled=True)


def test_a_member_joins_through_sso_once():
    on = canonical(enabled=True, client_secret_set=True, **UPSTREAM)
    verified = OrganizationSsoDomainVerified(
        org_id="org_1", issuer_id="i_1", domain="acme.com", verified_at=25
    )
    join = JoinThroughSso(ref=REF, user_id="usr_1", domain="acme.com", now=60)
    given = (organization_created(sso=on, default_member_scopes=["member"]), CREATED, verified)
    joined = OrganizationMembershipCreated(
        org_id="org_1", issuer_id="i_1", member_id="usr_1", member_type="user",
        scopes=["member"], joined_at=60,
    )  # fmt: skip
    spec().given(*given).when(join).then(joined)
    spec().given(*given, joined).when(join).then()
    # Only through a domain it verified, with SSO on, while active.
    spec().given(organization_created(sso=on), CREATED).when(join).raises(Conflict)
    spec().given(organization_created(), CREATED, verified).when(join).raises(Conflict)
    suspended = OrganizationSuspended(id="org_1", status_at=40)
    spec().given(*given, suspended).when(join).raises(Conflict)
