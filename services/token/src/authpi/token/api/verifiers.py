"""The Core API's user verifier routes (core-api.md 3.9 sub-resources; contract 4.25, `Verifier` and
the `UserVerifiers*Response` models in 5.8): TOTP enrolment (create, then complete with a first
code), list, get, rename or disable, delete, regenerate backup codes and verify a code. Scopes
`issuers.users.verifiers:read|write|delete`.

A verifier is `{id, type: "totp", user_id, issuer_id, name, status, totp: {algorithm, digits,
period}, backup_codes: {remaining, total}, last_used_at, created_at, updated_at}`; its secret and
backup codes are shown once (enrolment, completion, regeneration) and never again. The list is one
page (contract 3.4). Enrolment is handlers.enrolments, the rest handlers.verifiers. Codes that do
not pass answer 200 with `success: false` and an `error` (`invalid_code`, `code_reused`, `locked`,
`expired`), as the response models say; malformed requests are 4xx."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Response, Router, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.errors import FieldProblem, Unprocessable
from authpi.token.handlers.enrolments import Enrolments
from authpi.token.handlers.user_lookup import Owner, UserLookup
from authpi.token.handlers.verifiers import Verifiers, verifier_etag
from authpi.token.queries.mfa import VerifierRow
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, no_content, one
from authpi.web.guards import require_scope
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

USER = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}/users/{user_id:str}"
VERIFIERS = USER + "/verifiers"
VERIFIER = VERIFIERS + "/{verifier_id:str}"
TAGS = ["User verifiers"]
READ = [require_scope("issuers.users.verifiers:read")]
WRITE = [require_scope("issuers.users.verifiers:write")]
DELETE = [require_scope("issuers.users.verifiers:delete")]

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Code = Annotated[str, msgspec.Meta(max_length=64)]
Ref = Annotated[str, msgspec.Meta(max_length=128)]


class UserVerifierCreate(msgspec.Struct, frozen=True, kw_only=True):
    type: str = "totp"
    name: Name = "Authenticator app"


class CompleteEnrollmentBody(msgspec.Struct, frozen=True, kw_only=True):
    enrollment_id: Ref | None = None
    code: Code | None = None


class UserVerifierUpdate(msgspec.Struct, frozen=True, kw_only=True):
    name: Name | None = None
    status: str | None = None


class VerifyCodeBody(msgspec.Struct, frozen=True, kw_only=True):
    code: Code | None = None
    type: str | None = None  # totp | backup_code; by the code's shape when absent


class TotpParameters(msgspec.Struct, frozen=True, kw_only=True):
    algorithm: str
    digits: int
    period: int


class BackupCodeCount(msgspec.Struct, frozen=True, kw_only=True):
    remaining: int
    total: int


class Verifier(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    user_id: str
    issuer_id: str
    name: str
    status: str
    totp: TotpParameters
    backup_codes: BackupCodeCount
    last_used_at: int | None
    created_at: int
    updated_at: int | None

    @classmethod
    def of(cls, row: VerifierRow) -> Verifier:
        return cls(
            id=row.id, type=row.verifier_type, user_id=row.user_id, issuer_id=row.issuer_id,
            name=row.name, status=row.status,
            totp=TotpParameters(algorithm=row.algorithm, digits=row.digits, period=row.period),
            backup_codes=BackupCodeCount(remaining=row.remaining, total=len(row.backup_codes)),
            last_used_at=row.last_used_at, created_at=row.created_at, updated_at=row.updated_at,
        )  # fmt: skip


class UserVerifiersCreateResponse(msgspec.Struct, frozen=True, kw_only=True):
    enrollment_id: str
    type: str
    secret: str
    provisioning_uri: str
    expires_at: int


class UserVerifiersRegenerateResponse(msgspec.Struct, frozen=True, kw_only=True):
    codes: list[str]


class UserVerifiersCompleteEnrollmentResponse(
    msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True
):
    success: bool
    verifier_id: str | None = None
    backup_codes: list[str] | None = None
    error: str | None = None


class UserVerifiersVerifyResponse(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    success: bool
    remaining: int | None = None
    error: str | None = None


def _answer(row: VerifierRow) -> Response[One[Verifier]]:
    return one(Verifier.of(row), etag=verifier_etag(row))


def _required(field: str, value: str | None) -> str:
    if not value:
        problem = FieldProblem(field=field, code="required", message=f"{field} is required")
        raise Unprocessable(problem.message, reason=f"verifier.{field}", fields=[problem])
    return value


def _choice(field: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if value is not None and value not in allowed:
        message = f"{field} must be one of {', '.join(allowed)}"
        problem = FieldProblem(field=field, code="invalid_value", message=message)
        raise Unprocessable(message, reason=f"verifier.{field}", fields=[problem])
    return value


async def _owner(lookup: UserLookup, account_id: str, issuer_id: str, user_id: str) -> Owner:
    return await lookup.owner(account_id, issuer_id, user_id)


@get(VERIFIERS, operation_id="listUserVerifiers", summary="List User Verifiers", tags=TAGS,
     guards=READ)  # fmt: skip
async def list_verifiers(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    lookup: NamedDependency[UserLookup], verifiers: NamedDependency[Verifiers],
) -> Page[Verifier]:  # fmt: skip
    rows = await verifiers.list(await _owner(lookup, account_id, issuer_id, user_id))
    return Page(data=[Verifier.of(r) for r in rows], has_more=False, next_cursor=None)


@post(VERIFIERS, operation_id="createUserVerifier", summary="Create User Verifier", tags=TAGS,
      guards=WRITE, status_code=201)  # fmt: skip
async def create_verifier(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    lookup: NamedDependency[UserLookup], enrolments: NamedDependency[Enrolments],
    data: JSONBody[UserVerifierCreate] = UserVerifierCreate(),
) -> Response[One[UserVerifiersCreateResponse]]:  # fmt: skip
    check_storable(data)
    _choice("type", data.type, ("totp",))
    owner = await _owner(lookup, account_id, issuer_id, user_id)
    started = await enrolments.start(owner, data.name)
    out = UserVerifiersCreateResponse(
        enrollment_id=started.enrollment_id, type="totp", secret=started.secret,
        provisioning_uri=started.provisioning_uri, expires_at=started.expires_at,
    )  # fmt: skip
    return one(out, etag=started.etag, status=201)


@post(VERIFIERS + "/complete-enrollment", operation_id="completeUserVerifierEnrollment",
      summary="Complete Verifier Enrollment", tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def complete_enrollment(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    principal: InjectedPrincipal, lookup: NamedDependency[UserLookup],
    enrolments: NamedDependency[Enrolments], if_match: IfMatch = None,
    data: JSONBody[CompleteEnrollmentBody] = CompleteEnrollmentBody(),
) -> Response[One[UserVerifiersCompleteEnrollmentResponse]]:  # fmt: skip
    enrollment_id = _required("enrollment_id", data.enrollment_id)
    code = _required("code", data.code)
    owner = await _owner(lookup, account_id, issuer_id, user_id)
    done = await enrolments.complete(
        owner, enrollment_id, code, if_match, owner.meta(principal.actor())
    )
    return one(
        UserVerifiersCompleteEnrollmentResponse(
            success=done.success, verifier_id=done.verifier_id, backup_codes=done.backup_codes,
            error=done.error,
        )
    )  # fmt: skip


@get(VERIFIER, operation_id="getUserVerifier", summary="Get User Verifier", tags=TAGS,
     guards=READ)  # fmt: skip
async def get_verifier(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    verifier_id: FromPath[str], lookup: NamedDependency[UserLookup],
    verifiers: NamedDependency[Verifiers],
) -> Response[One[Verifier]]:  # fmt: skip
    owner = await _owner(lookup, account_id, issuer_id, user_id)
    return _answer(await verifiers.get(owner, verifier_id))


@patch(VERIFIER, operation_id="updateUserVerifier", summary="Update User Verifier", tags=TAGS,
       guards=WRITE)  # fmt: skip
async def update_verifier(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    verifier_id: FromPath[str], data: JSONBody[UserVerifierUpdate], principal: InjectedPrincipal,
    lookup: NamedDependency[UserLookup], verifiers: NamedDependency[Verifiers],
    if_match: IfMatch = None,
) -> Response[One[Verifier]]:  # fmt: skip
    check_storable(data)
    status = _choice("status", data.status, ("active", "disabled"))
    owner = await _owner(lookup, account_id, issuer_id, user_id)
    row = await verifiers.update(
        owner, verifier_id, data.name, status, if_match, owner.meta(principal.actor())
    )
    return _answer(row)


@delete(VERIFIER, operation_id="deleteUserVerifier", summary="Delete User Verifier", tags=TAGS,
        guards=DELETE, status_code=204)  # fmt: skip
async def delete_verifier(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    verifier_id: FromPath[str], principal: InjectedPrincipal,
    lookup: NamedDependency[UserLookup], verifiers: NamedDependency[Verifiers],
    if_match: IfMatch = None,
) -> Response[None]:  # fmt: skip
    owner = await _owner(lookup, account_id, issuer_id, user_id)
    await verifiers.delete(owner, verifier_id, if_match, owner.meta(principal.actor()))
    return no_content()


@post(VERIFIER + "/regenerate", operation_id="regenerateUserVerifierBackupCodes",
      summary="Regenerate Backup Codes", tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def regenerate_codes(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    verifier_id: FromPath[str], principal: InjectedPrincipal,
    lookup: NamedDependency[UserLookup], verifiers: NamedDependency[Verifiers],
    if_match: IfMatch = None,
) -> Response[One[UserVerifiersRegenerateResponse]]:  # fmt: skip
    owner = await _owner(lookup, account_id, issuer_id, user_id)
    row, codes = await verifiers.regenerate(
        owner, verifier_id, if_match, owner.meta(principal.actor())
    )
    return one(UserVerifiersRegenerateResponse(codes=codes), etag=verifier_etag(row))


@post(VERIFIER + "/verify", operation_id="verifyUserVerifierCode",
      summary="Verify Authentication Code", tags=TAGS, guards=WRITE, status_code=200)  # fmt: skip
async def verify_code(
    account_id: FromPath[str], issuer_id: FromPath[str], user_id: FromPath[str],
    verifier_id: FromPath[str], principal: InjectedPrincipal,
    lookup: NamedDependency[UserLookup], verifiers: NamedDependency[Verifiers],
    if_match: IfMatch = None, data: JSONBody[VerifyCodeBody] = VerifyCodeBody(),
) -> Response[One[UserVerifiersVerifyResponse]]:  # fmt: skip
    code = _required("code", data.code)
    kind = _choice("type", data.type, ("totp", "backup_code"))
    owner = await _owner(lookup, account_id, issuer_id, user_id)
    verifier = await verifiers.get(owner, verifier_id)
    checked = await verifiers.check(
        owner, verifier, code, owner.meta(principal.actor()), kind=kind, if_match=if_match
    )
    return one(
        UserVerifiersVerifyResponse(
            success=checked.success, remaining=checked.remaining, error=checked.error
        )
    )


ROUTES: list[Any] = [
    list_verifiers, create_verifier, complete_enrollment, get_verifier, update_verifier,
    delete_verifier, regenerate_codes, verify_code,
]  # fmt: skip


def verifiers_router(lookup: UserLookup, enrolments: Enrolments, verifiers: Verifiers) -> Router:
    return Router(
        "/",
        route_handlers=ROUTES,
        dependencies={
            "lookup": provide(lookup), "enrolments": provide(enrolments),
            "verifiers": provide(verifiers),
        },
    )  # fmt: skip
