"""Request and response Structs of the agent routes (contract 5.6 `Agent`,
`AgentVerifiersListItem`, `AgentVerifiersCreateResponse`; platform.md 3.2, 3.3, 4.4)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from authpi.agent.queries.agents import AgentFields, AgentRow, MembershipRow, VerifierRow
from authpi.errors import FieldProblem, Unprocessable
from authpi.web.metadata import check_metadata
from authpi.web.text import check_storable

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]
Descriptor = Annotated[str, msgspec.Meta(max_length=200)]  # model, provider, version
# Opaque strings defined by the integrator (platform.md 3.2), at most 256; each is an OAuth
# scope-token (RFC 6749 3.3), since the agent requests them with `scope=` at the token endpoint.
Scope = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Scopes = Annotated[list[Scope], msgspec.Meta(max_length=256)]
Status = Literal["active", "suspended", "blocked"]
Reason = Annotated[str, msgspec.Meta(max_length=1000)]
By = Annotated[str, msgspec.Meta(max_length=200)]
VerifierName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
VerifierDescription = Annotated[str, msgspec.Meta(max_length=1000)]
Short = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType
_Out = TypeVar("_Out", bound=msgspec.Struct)
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


class AgentCreate(msgspec.Struct, frozen=True, kw_only=True):
    name: Name
    description: Description | None = None
    model: Descriptor | None = None
    provider: Descriptor | None = None
    version: Descriptor | None = None
    scopes: Scopes | None = None
    metadata: dict[str, Any] | None = None


class AgentPatch(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | Unset = UNSET
    description: Description | Unset | None = UNSET
    model: Descriptor | Unset | None = UNSET
    provider: Descriptor | Unset | None = UNSET
    version: Descriptor | Unset | None = UNSET
    scopes: Scopes | Unset | None = UNSET
    metadata: dict[str, Any] | Unset | None = UNSET
    status: Status | Unset = UNSET
    status_reason: Reason | Unset | None = UNSET
    status_by: By | Unset | None = UNSET


class WalletCredential(msgspec.Struct, frozen=True, kw_only=True):
    """`network` (CAIP-2) and `address`, or `address` alone as a CAIP-10 account id; `proof`
    and `nonce` when proving control (platform.md 4.3)."""

    network: Short | None = None
    address: Short | None = None
    proof: Short | None = None
    nonce: Short | None = None


class VerifierCreate(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["secret", "wallet"]
    name: VerifierName | None = None
    description: VerifierDescription | None = None
    credential: WalletCredential | None = None


class ChallengeCreate(msgspec.Struct, frozen=True, kw_only=True):
    network: Short


def _shown(cls: type[_Out], row: Any) -> _Out:
    """The API view of a read row: the fields `cls` shows, copied by name."""
    return cls(**{f: getattr(row, f) for f in cls.__struct_fields__})


class AgentOut(AgentFields, frozen=True, kw_only=True):
    @classmethod
    def of(cls, row: AgentRow) -> AgentOut:
        return _shown(cls, row)


class MembershipOut(MembershipRow, frozen=True, kw_only=True):
    """An organization membership of the agent (platform.md 3.5; `OrganizationMembership`)."""

    member_type: str  # required here: the row's default is no default of the contract

    @classmethod
    def of(cls, row: MembershipRow) -> MembershipOut:
        return _shown(cls, row)


class VerifierOut(VerifierRow, frozen=True, kw_only=True):
    @classmethod
    def of(cls, row: VerifierRow) -> VerifierOut:
        return _shown(cls, row)


class CreatedVerifier(VerifierOut, frozen=True, kw_only=True, omit_defaults=True):
    secret: str | None = None  # the plaintext of a secret verifier, this once (platform.md 3.3)


class AgentListItem(AgentOut, frozen=True, kw_only=True, omit_defaults=True):
    """A list item; a wallet resolution (platform.md 4.4) adds the matching wallet verifier,
    and `expand=memberships` the agent's organization memberships."""

    wallet_verifier: VerifierOut | None = None
    memberships: list[MembershipOut] | None = None


class ChallengeOut(msgspec.Struct, frozen=True, kw_only=True):
    """Sign `message` with the wallet (EIP-191 personal_sign), then add the verifier with
    `credential.proof` (the signature) and `credential.nonce`."""

    nonce: str
    network: str
    message: str
    expires_at: int


def check_agent_body(data: AgentCreate | AgentPatch) -> list[str] | Unset | None:
    """Storable text, metadata rules, scope grammar; returns the scopes without duplicates."""
    check_storable(data)
    if isinstance(data.metadata, dict):
        check_metadata(data.metadata)
    if not isinstance(data.scopes, list):
        return data.scopes
    for i, scope in enumerate(data.scopes):
        if not _SCOPE_TOKEN.fullmatch(scope):
            problem = FieldProblem(
                field=f"scopes.{i}", code="invalid_value",
                message=f"scopes.{i} must be printable ASCII without spaces, quotes or backslashes",
            )  # fmt: skip
            raise Unprocessable(problem.message, reason="agent.scope", fields=[problem])
    return list(dict.fromkeys(data.scopes))
