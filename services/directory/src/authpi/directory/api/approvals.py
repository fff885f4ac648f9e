"""The signup approval queue of an issuer (core-api.md 3.10, contract 4.15): the users waiting,
oldest signup first, as privacy-reduced index records (`IssuerApprovalsListItem`, 5.7); one
waiting user in full; and the decision, a PATCH that answers the updated `User`.

Decision body (core-api.md 3.10, rec.): `{"decision": "approve" | "reject", "reason"?}`, or the
equivalent `{"status": "active" | "blocked", "status_reason"?}`. Deciding on a user that no
longer waits is a 409."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import Response, Router, get, patch
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.directory.api.pages import rendered
from authpi.directory.api.users import UserListItem, UserOut
from authpi.directory.handlers.approvals import Approvals
from authpi.errors import FieldProblem, InvalidRequest
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal
from authpi.web.text import check_storable

APPROVALS = "/v1/accounts/{account_id:str}/issuers/{issuer_id:str}/approvals"
APPROVAL = APPROVALS + "/{user_id:str}"
COLLECTION = "approvals"

Reason = Annotated[str, msgspec.Meta(max_length=1000)]
By = Annotated[str, msgspec.Meta(max_length=200)]
_BY_STATUS = {"active": "approve", "blocked": "reject"}


class ApprovalDecision(msgspec.Struct, frozen=True, kw_only=True):
    decision: Literal["approve", "reject"] | None = None
    reason: Reason | None = None
    status: Literal["active", "blocked"] | None = None
    status_reason: Reason | None = None
    status_by: By | None = None

    def resolved(self) -> tuple[str, str | None]:
        """(decision, reason): one of the two spellings, not both disagreeing."""
        by_status = None if self.status is None else _BY_STATUS[self.status]
        decision = self.decision or by_status
        if decision is None:
            raise _bad("decision", "required", "decision is required (approve or reject)")
        if by_status is not None and by_status != decision:
            raise _bad("status", "invalid_value", "status contradicts decision")
        return decision, self.reason if self.reason is not None else self.status_reason


def _bad(field: str, code: str, message: str) -> InvalidRequest:
    problem = FieldProblem(field=field, code=code, message=message)
    return InvalidRequest(message, reason=f"approval.{field}", fields=[problem])


@get(
    APPROVALS,
    operation_id="listApprovals",
    summary="List Pending Approvals",
    tags=["Approvals"],
    guards=[require_scope("issuers.approvals:read")],
)
async def list_approvals(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    page: InjectedPage,
    approvals: NamedDependency[Approvals],
) -> Page[UserListItem]:
    rows = await approvals.pending(account_id, issuer_id, page.after(COLLECTION), page.fetch_limit)
    listed = paginate(rows, page, COLLECTION, lambda r: (r.created_at, r.id))
    return rendered(listed, UserListItem.of)


@get(
    APPROVAL,
    operation_id="getApproval",
    summary="Get Approval Details",
    tags=["Approvals"],
    guards=[require_scope("issuers.approvals:read")],
)
async def get_approval(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    approvals: NamedDependency[Approvals],
) -> Response[One[UserOut]]:
    row = await approvals.get(account_id, issuer_id, user_id)
    return one(UserOut.of(row), etag=etag_of(row.created_at, row.updated_at))


@patch(
    APPROVAL,
    operation_id="updateApproval",
    summary="Update Approval",
    tags=["Approvals"],
    guards=[require_scope("issuers.approvals:write")],
)
async def update_approval(
    account_id: FromPath[str],
    issuer_id: FromPath[str],
    user_id: FromPath[str],
    data: JSONBody[ApprovalDecision],
    principal: InjectedPrincipal,
    approvals: NamedDependency[Approvals],
    if_match: IfMatch = None,
) -> Response[One[UserOut]]:
    check_storable(data)
    decision, reason = data.resolved()
    row = await approvals.decide(
        account_id, issuer_id, user_id, decision, reason, principal.actor(),
        decided_by=data.status_by, if_match=if_match,
    )  # fmt: skip
    return one(UserOut.of(row), etag=etag_of(row.created_at, row.updated_at))


def approvals_router(approvals: Approvals) -> Router:
    return Router(
        "/",
        route_handlers=[list_approvals, get_approval, update_approval],
        dependencies={"approvals": provide(approvals)},
    )
