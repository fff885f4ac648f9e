"""Payment methods (platform.md 5.3, contract 4.33): add, update and remove x402 methods
(network, asset, optional payer, top-up amount). A removed method keeps its record (`removed_at`)
for the ledger's references; it no longer funds the account. The Stripe set-up intent answers
422 `invalid_request` while no Stripe account is configured (none is, in this build): add an x402
method instead. Scope `credits:write`; the removal, a DELETE route, `credits:delete` (core-api.md
5.2: every resource's `:delete` grants its DELETE routes)."""

from __future__ import annotations

import msgspec
from litestar import Response, delete, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from authpi.billing.api.models import (
    MethodCreate,
    MethodOut,
    MethodPatch,
    check_asset,
    check_network,
    check_payer,
)
from authpi.billing.handlers.ledger import Ledger
from authpi.billing.queries.methods import method
from authpi.errors import FieldProblem, InvalidRequest, NotFound, Unprocessable
from authpi.web.envelopes import One, no_content, one
from authpi.web.etag import etag_of
from authpi.web.guards import require_scope
from authpi.web.principal import InjectedPrincipal

BASE = "/v1/accounts/{account_id:str}/payment-methods"
ONE = BASE + "/{method_id:str}"
TAGS = ["Payment methods"]
WRITE = [require_scope("credits:write")]
DELETE = [require_scope("credits:delete")]


async def _answer(ledger: Ledger, account_id: str, method_id: str, status: int = 200):
    async with ledger.rt.pool.connection() as conn:
        row = await method(conn, ledger.schema, account_id, method_id)
    if row is None:
        raise NotFound("no such payment method", reason="payment_method.not_found")
    return one(MethodOut.of(row), etag=etag_of(row.created_at, row.updated_at), status=status)


@post(BASE, operation_id="createAccountPaymentMethod", summary="Add x402 Payment Method",
      tags=TAGS, guards=WRITE)  # fmt: skip
async def create_method(
    account_id: FromPath[str],
    data: JSONBody[MethodCreate],
    principal: InjectedPrincipal,
    ledger: NamedDependency[Ledger],
) -> Response[One[MethodOut]]:
    if data.type != "x402":
        problem = FieldProblem(field="type", code="invalid_value",
                               message="only x402 methods can be added here")  # fmt: skip
        raise InvalidRequest(problem.message, reason="payment_method.type", fields=[problem])
    network = check_network(data.network)
    fields = {
        "network": network, "asset": check_asset(data.asset),
        "payer": check_payer(data.payer, network), "topup_amount": data.topup_amount,
        "enabled": data.enabled,
    }  # fmt: skip
    method_id = await ledger.add_method(account_id, fields, actor=principal.actor())
    return await _answer(ledger, account_id, method_id, status=201)


@patch(ONE, operation_id="updateAccountPaymentMethod", summary="Update Account Payment Method",
       tags=TAGS, guards=WRITE)  # fmt: skip
async def update_method(
    account_id: FromPath[str],
    method_id: FromPath[str],
    data: JSONBody[MethodPatch],
    principal: InjectedPrincipal,
    ledger: NamedDependency[Ledger],
) -> Response[One[MethodOut]]:
    async with ledger.rt.pool.connection() as conn:
        current = await method(conn, ledger.schema, account_id, method_id)
    if current is None or current.removed_at is not None:
        raise NotFound("no such payment method", reason="payment_method.not_found")
    given = {f: getattr(data, f) for f in data.__struct_fields__}
    changes: dict[str, object] = {k: v for k, v in given.items() if v is not msgspec.UNSET}
    network = str(changes.get("network", current.network))
    if "network" in changes:
        check_network(network)
    if "asset" in changes:
        check_asset(str(changes["asset"]))
    payer = changes.get("payer", current.payer)
    check_payer(None if payer is None else str(payer), network)
    await ledger.update_method(account_id, method_id, changes, actor=principal.actor())
    return await _answer(ledger, account_id, method_id)


@delete(ONE, operation_id="deleteAccountPaymentMethod", summary="Remove Account Payment Method",
        tags=TAGS, guards=DELETE, status_code=204)  # fmt: skip
async def delete_method(
    account_id: FromPath[str],
    method_id: FromPath[str],
    principal: InjectedPrincipal,
    ledger: NamedDependency[Ledger],
) -> Response[None]:
    async with ledger.rt.pool.connection() as conn:
        current = await method(conn, ledger.schema, account_id, method_id)
    if current is None or current.removed_at is not None:
        raise NotFound("no such payment method", reason="payment_method.not_found")
    await ledger.remove_method(account_id, method_id, actor=principal.actor())
    return no_content()


@post(BASE + "/stripe/setup-intent", operation_id="createAccountStripeSetupIntent",
      summary="Create Stripe Setup Intent", tags=TAGS, guards=WRITE)  # fmt: skip
async def stripe_setup_intent(account_id: FromPath[str]) -> None:
    raise Unprocessable(
        "Stripe is not configured on this deployment: no card can be collected. Add an x402"
        " payment method instead (POST /v1/accounts/{account_id}/payment-methods).",
        reason="billing.stripe_not_configured",
    )


ROUTES = [create_method, update_method, delete_method, stripe_setup_intent]
