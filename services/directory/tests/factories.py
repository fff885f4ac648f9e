"""Builders of the directory's events and commands for decider tests. Each builds the common case
of one aggregate (the ids below, time T0) and takes `**overrides` for whatever a test varies."""

from __future__ import annotations

from typing import Any

from authpi.contracts.directory import (
    AccountCreated,
    AccountDomainAdded,
    AccountDomainAssigned,
    AccountDomainRemoved,
    AccountDomainUnassigned,
    AccountUpdated,
    ApiKeyBlocked,
    ApiKeyCreated,
    ApiKeyDeleted,
    ApiKeyUnblocked,
    ApiKeyUpdated,
    AuthMethodCreated,
    AuthMethodUpdated,
    ClientBlocked,
    ClientConfig,
    ClientCreated,
    ClientDeleted,
    ClientSecretRotated,
    ClientUnblocked,
    ClientUpdated,
    DomainSnapshot,
    IssuerCreated,
    IssuerDeleted,
    IssuerUpdated,
    NoteCreated,
    NoteDeleted,
    NoteMention,
    NoteReference,
    NoteUpdated,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationGroupCreated,
    OrganizationGroupDeleted,
    OrganizationMembershipCreated,
    OrganizationMembershipDeleted,
    OrganizationMembershipUpdated,
    OrganizationReactivated,
    OrganizationSuspended,
    OrganizationUpdated,
    PersonalTokenCreated,
    PersonalTokenDeleted,
    PersonalTokenUpdated,
    TokenPolicy,
    UserBlocked,
    UserCreated,
    UserDeleted,
    UserUnblocked,
    UserUpdated,
)
from authpi.directory.domain.commands.account import (
    AddDomain,
    AssignDomain,
    CreateAccount,
    ExpireDomainClaim,
    ReleaseIssuerDomains,
    RemoveDomain,
    UnassignDomain,
    UpdateAccount,
    VerifyDomain,
)
from authpi.directory.domain.commands.api_key import (
    BlockApiKey,
    CreateApiKey,
    DeleteApiKey,
    RevokeApiKey,
    RotateApiKey,
    UnblockApiKey,
    UpdateApiKey,
)
from authpi.directory.domain.commands.client import (
    CreateClient,
    DeleteClient,
    RotateClientSecret,
    UpdateClient,
)
from authpi.directory.domain.commands.issuer import (
    CreateAuthMethod,
    CreateIssuer,
    DeleteAuthMethod,
    DeleteIssuer,
    UpdateAuthMethod,
    UpdateIssuer,
)
from authpi.directory.domain.commands.note import CreateNote, DeleteNote, UpdateNote
from authpi.directory.domain.commands.organization import (
    AddMember,
    CreateGroup,
    CreateOrganization,
    DeleteGroup,
    DeleteOrganization,
    DropDepartedMember,
    FinishOrganizationDeletion,
    OrgRef,
    Profile,
    RemoveMember,
    RequireLiveOrganization,
    UpdateMember,
    UpdateOrganization,
)
from authpi.directory.domain.commands.personal_token import (
    CreatePersonalToken,
    DeletePersonalToken,
    RevokePersonalToken,
)
from authpi.directory.domain.commands.user import CreateUser, DeleteUser, UpdateUser
from authpi.directory.domain.org_sso_config import SsoConfig, as_object

T0 = 1_781_222_400_000
ETAG0 = f'"{T0}"'
HOST = "auth.example.com"
AGENT = "agt_0192f0c4a1b27c3d8e9f0a1b2c3d4e5f"
REF = OrgRef(org_id="org_1", account_id="acc_1", issuer_id="i_1")


def _with(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    return {**defaults, **overrides}


# Account and its domains (stream acc_1)


def account_created(**o: Any) -> AccountCreated:
    base = {"id": "acc_1", "org_id": "org_1", "name": "Acme", "owner_user_id": None}
    return AccountCreated(**_with({**base, "created_at": T0}, o))


def account_updated(**o: Any) -> AccountUpdated:
    return AccountUpdated(**_with({"id": "acc_1", "changed": [], "updated_at": T0 + 1}, o))


def owned_account_created(**o: Any) -> AccountCreated:
    """An account with an owner and one metadata entry."""
    return account_created(**_with({"owner_user_id": "usr_1", "metadata": {"crm": "c1"}}, o))


def owned_account_updated(**o: Any) -> AccountUpdated:
    """An account.updated of the account of `owned_account_created`; name what changed."""
    base = {"name": "Acme", "owner_user_id": "usr_1", "metadata": {"crm": "c1"}}
    return account_updated(**_with(base, o))


def domain_snapshot(**o: Any) -> DomainSnapshot:
    return DomainSnapshot(**_with({"host": HOST, "verified": False, "added_at": T0 + 1}, o))


def domain_added(**o: Any) -> AccountDomainAdded:
    return AccountDomainAdded(**_with({"account_id": "acc_1", "host": HOST, "added_at": T0 + 1}, o))


def domain_verified(host: str = HOST, at: int = T0 + 2, primary: bool = False) -> AccountUpdated:
    """The account.updated of a verification: the domain's snapshot, verified."""
    snapshot = domain_snapshot(host=host, verified=True, primary=primary)
    return account_updated(changed=["domains"], name="Acme", updated_at=at, domains=[snapshot])


def primaries_set(first: bool, second: bool, at: int) -> AccountUpdated:
    """The account.updated of a PATCH of the primary flags of HOST and b.example.com (added at
    T0 + 1 and T0 + 2)."""
    snapshots = [
        domain_snapshot(primary=first),
        domain_snapshot(host="b.example.com", added_at=T0 + 2, primary=second),
    ]
    return account_updated(changed=["domains"], name="Acme", updated_at=at, domains=snapshots)


def domain_assigned(**o: Any) -> AccountDomainAssigned:
    base = {"account_id": "acc_1", "host": HOST, "issuer_id": "i_1", "assigned_at": T0 + 3}
    return AccountDomainAssigned(**_with(base, o))


def domain_unassigned(**o: Any) -> AccountDomainUnassigned:
    base = {"account_id": "acc_1", "host": HOST, "issuer_id": "i_1", "unassigned_at": T0 + 4}
    return AccountDomainUnassigned(**_with(base, o))


def domain_removed(**o: Any) -> AccountDomainRemoved:
    base = {"account_id": "acc_1", "host": HOST, "verified": False, "removed_at": T0 + 4}
    return AccountDomainRemoved(**_with(base, o))


def create_account(**o: Any) -> CreateAccount:
    base = {"account_id": "acc_1", "org_id": "org_1", "name": "Acme", "owner_user_id": None}
    return CreateAccount(**_with({**base, "now": T0}, o))


def update_account(**o: Any) -> UpdateAccount:
    return UpdateAccount(**_with({"account_id": "acc_1", "now": T0}, o))


def add_domain(**o: Any) -> AddDomain:
    return AddDomain(**_with({"account_id": "acc_1", "host": HOST, "now": T0}, o))


def verify_domain(**o: Any) -> VerifyDomain:
    return VerifyDomain(**_with({"account_id": "acc_1", "host": HOST, "now": T0}, o))


def assign_domain(**o: Any) -> AssignDomain:
    base = {"account_id": "acc_1", "host": HOST, "issuer_id": "i_1", "now": T0}
    return AssignDomain(**_with(base, o))


def unassign_domain(**o: Any) -> UnassignDomain:
    return UnassignDomain(**_with({"account_id": "acc_1", "host": HOST, "now": T0}, o))


def remove_domain(**o: Any) -> RemoveDomain:
    return RemoveDomain(**_with({"account_id": "acc_1", "host": HOST, "now": T0}, o))


def expire_domain_claim(**o: Any) -> ExpireDomainClaim:
    return ExpireDomainClaim(**_with({"account_id": "acc_1", "host": HOST, "now": T0}, o))


def release_issuer_domains(**o: Any) -> ReleaseIssuerDomains:
    base = {"account_id": "acc_1", "issuer_id": "i_1", "now": T0}
    return ReleaseIssuerDomains(**_with(base, o))


# API key (stream key_1 of account acc_a)


def api_key_created(**o: Any) -> ApiKeyCreated:
    base = {
        "id": "key_1", "account_id": "acc_a", "org_id": "org_a", "issuer_id": "i_x", "name": "k",
        "secret_sha256": "d1", "secret_hint": "h1", "created_at": T0,
    }  # fmt: skip
    return ApiKeyCreated(**_with(base, o))


def scoped_api_key_created(**o: Any) -> ApiKeyCreated:
    """A key with one scope and one metadata entry, and secret digest d."""
    base = {"scopes": ["issuers:read"], "metadata": {"a": 1}, "secret_sha256": "d"}
    return api_key_created(**_with({**base, "secret_hint": "h"}, o))


def api_key_blocked(**o: Any) -> ApiKeyBlocked:
    return ApiKeyBlocked(**_with({"id": "key_1", "status_at": T0 + 1}, o))


def api_key_unblocked(**o: Any) -> ApiKeyUnblocked:
    return ApiKeyUnblocked(**_with({"id": "key_1", "status_at": T0 + 1}, o))


def api_key_updated(**o: Any) -> ApiKeyUpdated:
    return ApiKeyUpdated(**_with({"id": "key_1", "changed": [], "updated_at": T0 + 1}, o))


def api_key_deleted(**o: Any) -> ApiKeyDeleted:
    return ApiKeyDeleted(**_with({"id": "key_1", "deleted_at": T0 + 1}, o))


def create_api_key(**o: Any) -> CreateApiKey:
    base = {
        "key_id": "key_1", "account_id": "acc_a", "org_id": "org_a", "issuer_id": "i_x",
        "name": "k", "secret_sha256": "d1", "secret_hint": "h1", "now": T0,
    }  # fmt: skip
    return CreateApiKey(**_with(base, o))


def _key_command(o: dict[str, Any]) -> dict[str, Any]:
    return _with({"key_id": "key_1", "account_id": "acc_a", "now": T0 + 10}, o)


def block_api_key(**o: Any) -> BlockApiKey:
    return BlockApiKey(**_key_command(o))


def unblock_api_key(**o: Any) -> UnblockApiKey:
    return UnblockApiKey(**_key_command(o))


def revoke_api_key(**o: Any) -> RevokeApiKey:
    return RevokeApiKey(**_key_command(o))


def rotate_api_key(**o: Any) -> RotateApiKey:
    return RotateApiKey(**_key_command({"secret_sha256": "d2", "secret_hint": "h2", **o}))


def update_api_key(**o: Any) -> UpdateApiKey:
    return UpdateApiKey(**_key_command({"now": T0, **o}))


def delete_api_key(**o: Any) -> DeleteApiKey:
    return DeleteApiKey(**_key_command({"now": T0, **o}))


# Issuer and its auth methods (stream i_1 of account acc_1)

ISSUER_SETTINGS: dict[str, Any] = {
    "portals": {},
    "branding": {},
    "access": {
        "mode": "open",
        "sessions": {"max_age": 604_800, "idle_timeout": 43_200},
        "tokens": {"access_token_ttl": 1800, "refresh_token_ttl": 604_800, "id_token_ttl": 1800},
    },
    "security": {"signing": {"algorithms": ["ES256", "EdDSA", "RS256"], "default_alg": "ES256"}},
}


def issuer_created(**o: Any) -> IssuerCreated:
    """An issuer created with no settings: the defaults, and the default token policy."""
    base = {
        "id": "i_1", "account_id": "acc_1", "name": "prod", "settings": ISSUER_SETTINGS,
        "tokens": TokenPolicy(), "created_at": T0,
    }  # fmt: skip
    return IssuerCreated(**_with(base, o))


def issuer_updated(**o: Any) -> IssuerUpdated:
    base = {"id": "i_1", "account_id": "acc_1", "changed": [], "name": "prod"}
    return IssuerUpdated(**_with({**base, "updated_at": T0 + 1}, o))


def issuer_deleted(**o: Any) -> IssuerDeleted:
    return IssuerDeleted(**_with({"id": "i_1", "account_id": "acc_1", "deleted_at": T0 + 1}, o))


def auth_method_created(**o: Any) -> AuthMethodCreated:
    base = {"id": "am_1", "issuer_id": "i_1", "method_type": "password", "created_at": T0}
    return AuthMethodCreated(**_with(base, o))


def auth_method_updated(**o: Any) -> AuthMethodUpdated:
    base = {"id": "am_1", "issuer_id": "i_1", "changed": [], "method_type": "password"}
    return AuthMethodUpdated(**_with({**base, "updated_at": T0 + 1}, o))


def create_issuer(**o: Any) -> CreateIssuer:
    base = {"issuer_id": "i_1", "account_id": "acc_1", "name": "prod", "now": T0}
    return CreateIssuer(**_with(base, o))


def update_issuer(**o: Any) -> UpdateIssuer:
    return UpdateIssuer(**_with({"issuer_id": "i_1", "account_id": "acc_1", "now": T0}, o))


def delete_issuer(**o: Any) -> DeleteIssuer:
    return DeleteIssuer(**_with({"issuer_id": "i_1", "account_id": "acc_1", "now": T0}, o))


def create_auth_method(**o: Any) -> CreateAuthMethod:
    base = {"issuer_id": "i_1", "account_id": "acc_1", "method_id": "am_2", "type": "password"}
    return CreateAuthMethod(**_with({**base, "now": T0}, o))


def update_auth_method(**o: Any) -> UpdateAuthMethod:
    base = {"issuer_id": "i_1", "account_id": "acc_1", "method_id": "am_1", "now": T0}
    return UpdateAuthMethod(**_with(base, o))


def delete_auth_method(**o: Any) -> DeleteAuthMethod:
    base = {"issuer_id": "i_1", "account_id": "acc_1", "method_id": "am_1", "now": T0}
    return DeleteAuthMethod(**_with(base, o))


# Client (stream c_1 of issuer i_1)


def client_config(**o: Any) -> ClientConfig:
    """The normalized settings of an m2m client created without settings."""
    base = {"application_type": "web", "grant_types": ["client_credentials"]}
    return ClientConfig(**_with(base, o))


def user_facing_config(**o: Any) -> ClientConfig:
    """The normalized settings of a spa or web client created with one redirect URI."""
    base = {
        "application_type": "web", "redirect_uris": ["https://a.test/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"], "scopes": ["openid", "profile", "email"],
    }  # fmt: skip
    return ClientConfig(**_with(base, o))


def client_created(**o: Any) -> ClientCreated:
    """An m2m client created without settings (override `client_type`, `confidential`, `config`
    and the secret for another type)."""
    base = {
        "id": "c_1", "issuer_id": "i_1", "name": "app", "client_type": "m2m", "confidential": True,
        "config": client_config(), "secret_sha256": "d0", "created_at": T0,
    }  # fmt: skip
    return ClientCreated(**_with(base, o))


def spa_client_created(**o: Any) -> ClientCreated:
    base = {"client_type": "spa", "confidential": False, "secret_sha256": None}
    return client_created(**_with({**base, "config": user_facing_config()}, o))


def web_client_created(**o: Any) -> ClientCreated:
    return client_created(**_with({"client_type": "web", "config": user_facing_config()}, o))


def client_updated(**o: Any) -> ClientUpdated:
    base = {"id": "c_1", "issuer_id": "i_1", "changed": [], "name": "app"}
    return ClientUpdated(**_with({**base, "config": client_config(), "updated_at": T0 + 1}, o))


def client_blocked(**o: Any) -> ClientBlocked:
    return ClientBlocked(**_with({"id": "c_1", "issuer_id": "i_1", "status_at": T0 + 1}, o))


def client_unblocked(**o: Any) -> ClientUnblocked:
    return ClientUnblocked(**_with({"id": "c_1", "issuer_id": "i_1", "status_at": T0 + 1}, o))


def client_secret_rotated(**o: Any) -> ClientSecretRotated:
    base = {
        "id": "c_1", "issuer_id": "i_1", "secret_sha256": "d1", "secret_hint": "h",
        "previous_secret_sha256": "d0", "previous_valid_until": T0 + 1 + 900_000,
        "secret_rotated_at": T0 + 1,
    }  # fmt: skip
    return ClientSecretRotated(**_with(base, o))


def client_deleted(**o: Any) -> ClientDeleted:
    return ClientDeleted(**_with({"id": "c_1", "issuer_id": "i_1", "deleted_at": T0 + 1}, o))


def create_client(client_type: str = "m2m", **settings: Any) -> CreateClient:
    """A create of `client_type` with `settings`; confidential types carry a secret digest."""
    return CreateClient(
        client_id="c_1", issuer_id="i_1", name="app", type=client_type, now=T0, settings=settings,
        secret_sha256="d0" if client_type in ("web", "m2m") else None,
    )  # fmt: skip


def update_client(**o: Any) -> UpdateClient:
    return UpdateClient(**_with({"client_id": "c_1", "issuer_id": "i_1", "now": T0}, o))


def rotate_client_secret(**o: Any) -> RotateClientSecret:
    base = {"client_id": "c_1", "issuer_id": "i_1", "secret_sha256": "d1", "secret_hint": "h"}
    return RotateClientSecret(**_with({**base, "now": T0}, o))


def delete_client(**o: Any) -> DeleteClient:
    return DeleteClient(**_with({"client_id": "c_1", "issuer_id": "i_1", "now": T0}, o))


# Organization, memberships and groups (stream org_1 of issuer i_1)


# The `sso` object every organization is created with when the body names none.
DEFAULT_SSO = as_object(SsoConfig())


def organization_created(**o: Any) -> OrganizationCreated:
    base = {"id": "org_1", "issuer_id": "i_1", "account_id": "acc_1", "name": "Acme"}
    return OrganizationCreated(**_with({**base, "sso": DEFAULT_SSO, "created_at": 10}, o))


def organization_updated(**o: Any) -> OrganizationUpdated:
    base = {"id": "org_1", "issuer_id": "i_1", "account_id": "acc_1", "name": "Acme"}
    return OrganizationUpdated(
        **_with({**base, "sso": DEFAULT_SSO, "changed": [], "updated_at": 30}, o)
    )


def organization_deleting(**o: Any) -> OrganizationUpdated:
    return organization_updated(**_with({"changed": ["status"], "status": "deleting"}, o))


def organization_suspended(**o: Any) -> OrganizationSuspended:
    return OrganizationSuspended(**_with({"id": "org_1", "status_at": 50}, o))


def organization_reactivated(**o: Any) -> OrganizationReactivated:
    return OrganizationReactivated(**_with({"id": "org_1", "status_at": 60}, o))


def organization_deleted(**o: Any) -> OrganizationDeleted:
    return OrganizationDeleted(**_with({"id": "org_1", "issuer_id": "i_1", "deleted_at": 40}, o))


def member_joined(**o: Any) -> OrganizationMembershipCreated:
    base = {
        "org_id": "org_1", "issuer_id": "i_1", "member_id": "usr_1", "member_type": "user",
        "scopes": ["member"], "joined_at": 20,
    }  # fmt: skip
    return OrganizationMembershipCreated(**_with(base, o))


def agent_joined(**o: Any) -> OrganizationMembershipCreated:
    return member_joined(**_with({"member_id": AGENT, "member_type": "agent"}, o))


def agent_left(**o: Any) -> OrganizationMembershipDeleted:
    return membership_deleted(**_with({"member_id": AGENT, "member_type": "agent"}, o))


def membership_updated(**o: Any) -> OrganizationMembershipUpdated:
    base = {"org_id": "org_1", "issuer_id": "i_1", "member_id": "usr_1", "member_type": "user"}
    return OrganizationMembershipUpdated(**_with({**base, "changed": [], "updated_at": 50}, o))


def membership_deleted(**o: Any) -> OrganizationMembershipDeleted:
    base = {"org_id": "org_1", "issuer_id": "i_1", "member_id": "usr_1", "member_type": "user"}
    return OrganizationMembershipDeleted(**_with({**base, "deleted_at": 50}, o))


def group_created(**o: Any) -> OrganizationGroupCreated:
    base = {"id": "grp_1", "org_id": "org_1", "issuer_id": "i_1", "name": "Admins"}
    return OrganizationGroupCreated(**_with({**base, "created_at": 15}, o))


def group_deleted(**o: Any) -> OrganizationGroupDeleted:
    base = {"id": "grp_1", "org_id": "org_1", "issuer_id": "i_1", "deleted_at": 50}
    return OrganizationGroupDeleted(**_with(base, o))


def create_organization(**o: Any) -> CreateOrganization:
    return CreateOrganization(**_with({"ref": REF, "profile": Profile(name="Acme"), "now": 10}, o))


def update_organization(**o: Any) -> UpdateOrganization:
    return UpdateOrganization(**_with({"ref": REF, "now": 50}, o))


def delete_organization(**o: Any) -> DeleteOrganization:
    return DeleteOrganization(**_with({"ref": REF, "now": 30}, o))


def finish_organization_deletion(**o: Any) -> FinishOrganizationDeletion:
    return FinishOrganizationDeletion(**_with({"org_id": "org_1", "now": 40}, o))


def require_live_organization(**o: Any) -> RequireLiveOrganization:
    return RequireLiveOrganization(**_with({"ref": REF}, o))


def add_member(**o: Any) -> AddMember:
    base = {"ref": REF, "member_id": "usr_1", "member_type": "user", "now": 40}
    return AddMember(**_with(base, o))


def update_member(**o: Any) -> UpdateMember:
    return UpdateMember(**_with({"ref": REF, "member_id": "usr_1", "now": 50}, o))


def remove_member(**o: Any) -> RemoveMember:
    return RemoveMember(**_with({"ref": REF, "member_id": "usr_1", "now": 50}, o))


def drop_departed_member(**o: Any) -> DropDepartedMember:
    return DropDepartedMember(**_with({"org_id": "org_1", "member_id": AGENT, "now": 50}, o))


def create_group(**o: Any) -> CreateGroup:
    return CreateGroup(**_with({"ref": REF, "group_id": "grp_1", "name": "Admins", "now": 15}, o))


def delete_group(**o: Any) -> DeleteGroup:
    return DeleteGroup(**_with({"ref": REF, "group_id": "grp_1", "now": 50}, o))


# User (stream usr_1 of issuer i_a) and personal token (stream ptk_1 of account acc_a)


def user_created(**o: Any) -> UserCreated:
    base = {"id": "usr_1", "issuer_id": "i_a", "username_hash": "h", "pii": "sealed"}
    return UserCreated(**_with({**base, "created_at": T0}, o))


def user_updated(**o: Any) -> UserUpdated:
    return UserUpdated(**_with({"id": "usr_1", "issuer_id": "i_a", "changed": [],
                                "updated_at": T0 + 10}, o))  # fmt: skip


def user_blocked(**o: Any) -> UserBlocked:
    base = {"id": "usr_1", "issuer_id": "i_a", "status": "suspended", "status_at": T0 + 10}
    return UserBlocked(**_with(base, o))


def user_unblocked(**o: Any) -> UserUnblocked:
    return UserUnblocked(**_with({"id": "usr_1", "issuer_id": "i_a", "status_at": T0 + 11}, o))


def user_deleted(**o: Any) -> UserDeleted:
    return UserDeleted(**_with({"id": "usr_1", "issuer_id": "i_a", "deleted_at": T0 + 1}, o))


def create_user(**o: Any) -> CreateUser:
    base = {"user_id": "usr_1", "issuer_id": "i_a", "username_hash": "h", "pii": "sealed"}
    return CreateUser(**_with({**base, "now": T0}, o))


def update_user(**o: Any) -> UpdateUser:
    base = {"user_id": "usr_1", "issuer_id": "i_a", "now": T0 + 10, "based_on": ETAG0}
    return UpdateUser(**_with(base, o))


def delete_user(**o: Any) -> DeleteUser:
    return DeleteUser(**_with({"user_id": "usr_1", "issuer_id": "i_a", "now": T0}, o))


def token_created(**o: Any) -> PersonalTokenCreated:
    base = {
        "id": "ptk_1", "account_id": "acc_a", "issuer_id": "i_a", "user_id": "usr_1",
        "name": "cli", "jti": "ptk_1", "token_sha256": "d", "token_hint": "h", "created_at": T0,
    }  # fmt: skip
    return PersonalTokenCreated(**_with(base, o))


def token_updated(**o: Any) -> PersonalTokenUpdated:
    base = {"id": "ptk_1", "user_id": "usr_1", "changed": [], "updated_at": T0 + 1}
    return PersonalTokenUpdated(**_with(base, o))


def token_deleted(**o: Any) -> PersonalTokenDeleted:
    return PersonalTokenDeleted(**_with({"id": "ptk_1", "user_id": "usr_1",
                                         "deleted_at": T0 + 1}, o))  # fmt: skip


def create_token(**o: Any) -> CreatePersonalToken:
    base = {
        "token_id": "ptk_1", "account_id": "acc_a", "issuer_id": "i_a", "user_id": "usr_1",
        "name": "cli", "token_sha256": "d", "token_hint": "h", "now": T0,
    }  # fmt: skip
    return CreatePersonalToken(**_with(base, o))


def revoke_token(**o: Any) -> RevokePersonalToken:
    return RevokePersonalToken(**_with({"token_id": "ptk_1", "account_id": "acc_a", "now": T0}, o))


def delete_token(**o: Any) -> DeletePersonalToken:
    return DeletePersonalToken(**_with({"token_id": "ptk_1", "account_id": "acc_a", "now": T0}, o))


NOTE_TEXT = "Call @[Dana](usr_d) about [[client:c_1|the app]] and [[webhook:wh_1]]."


def note_created(**o: Any) -> NoteCreated:
    """A pinned-less note on organization org_1 of issuer i_1, by key_1, with the mentions and
    references of NOTE_TEXT (client c_1 of issuer i_1)."""
    base = {
        "id": "note_1", "account_id": "acc_1", "issuer_id": "i_1", "subject_type": "org",
        "subject_id": "org_1", "content": NOTE_TEXT, "created_by": "key_1",
        "mentions": [NoteMention(mentioned_user_id="usr_d", created_at=T0)],
        "references": [
            NoteReference(ref_type="client", ref_id="c_1", ref_issuer_id="i_1", created_at=T0),
            NoteReference(ref_type="webhook", ref_id="wh_1", created_at=T0),
        ],
        "created_at": T0,
    }  # fmt: skip
    return NoteCreated(**_with(base, o))


def note_updated(**o: Any) -> NoteUpdated:
    base = {
        "id": "note_1", "account_id": "acc_1", "changed": ["pinned"], "content": NOTE_TEXT,
        "pinned": True, "updated_by": "key_1",
        "mentions": note_created().mentions, "references": note_created().references,
        "updated_at": T0 + 1000,
    }  # fmt: skip
    return NoteUpdated(**_with(base, o))


def note_deleted(**o: Any) -> NoteDeleted:
    base = {"id": "note_1", "account_id": "acc_1", "deleted_by": "key_1", "deleted_at": T0 + 1000}
    return NoteDeleted(**_with(base, o))


def create_note(**o: Any) -> CreateNote:
    base = {
        "note_id": "note_1", "account_id": "acc_1", "issuer_id": "i_1", "subject_type": "org",
        "subject_id": "org_1", "content": NOTE_TEXT, "author": "key_1", "now": T0,
        "ref_issuers": {"client:c_1": "i_1"},
    }  # fmt: skip
    return CreateNote(**_with(base, o))


def update_note(**o: Any) -> UpdateNote:
    base = {"note_id": "note_1", "account_id": "acc_1", "author": "key_1", "now": T0 + 1000}
    return UpdateNote(**_with(base, o))


def delete_note(**o: Any) -> DeleteNote:
    base = {"note_id": "note_1", "account_id": "acc_1", "author": "key_1", "now": T0 + 1000}
    return DeleteNote(**_with(base, o))
