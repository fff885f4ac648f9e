"""Credits (platform.md 5.4, contract 4.5): the account's ledger, newest first, and the explicit
x402 top-up (`POST …/credits/topups` with `PAYMENT-SIGNATURE` or `X-PAYMENT`: verified, settled
and credited idempotently on the payment; without a payment it answers the 402 challenge).
Scopes `credits:read` and `credits:write`."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from authpi.billing.api.models import EntryOut, TopupOut
from authpi.billing.handlers.ledger import Ledger
from authpi.billing.handlers.payments import (
    PaymentsPort,
    amount_of,
    carries_payment,
    payment_required,
    usd,
)
from authpi.errors import AuthpiError, ServerError
from authpi.web.envelopes import One, Page, one
from authpi.web.guards import require_scope
from authpi.web.pagination import InjectedPage, paginate

ACCOUNT = "/v1/accounts/{account_id:str}"
TAGS = ["Credits"]
READ = [require_scope("credits:read")]
WRITE = [require_scope("credits:write")]


def _after(page: Any) -> int | None:
    key = page.after_time_id("credits-ledger")
    return None if key is None else key[0]


@get(ACCOUNT + "/credits/ledger", operation_id="listAccountCreditLedger",
     summary="List Account Credit Ledger", tags=TAGS, guards=READ)  # fmt: skip
async def list_ledger(
    account_id: FromPath[str], page: InjectedPage, ledger: NamedDependency[Ledger]
) -> Page[EntryOut]:
    async with ledger.rt.pool.connection() as conn:
        rows = await ledger.queries.entries(conn, account_id, _after(page), page.fetch_limit)
    listed = paginate(rows, page, "credits-ledger", lambda r: (r.seq, r.entry_id))
    return Page(data=[EntryOut.of(r) for r in listed.data], has_more=listed.has_more,
                next_cursor=listed.next_cursor)  # fmt: skip


@post(ACCOUNT + "/credits/topups", operation_id="createAccountCreditTopup",
      summary="Create Account Credit Top-up", tags=TAGS, guards=WRITE)  # fmt: skip
async def create_topup(
    account_id: FromPath[str],
    request: Request[Any, Any, Any],
    payments: NamedDependency[PaymentsPort],
) -> Response[One[TopupOut]]:
    port = payments.require()
    url = str(request.url)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if not carries_payment(headers):
        challenge = await port.challenge(account_id, url)
        raise payment_required(
            challenge, f"Pay the challenge to top up {usd(amount_of(challenge))} USD."
        )
    outcome = await port.pay(account_id, headers, url)
    if not outcome.ok or outcome.topup is None:
        if isinstance(outcome.error, AuthpiError):
            raise outcome.error
        raise ServerError("the payment could not be processed", reason="billing.pay_failed")
    t = outcome.topup
    response = one(
        TopupOut(balance=t.balance, entry_id=t.entry_id, duplicate=t.duplicate,
                 payment_reference=t.payment_reference),
        status=200 if t.duplicate else 201,
    )  # fmt: skip
    if outcome.response_header is not None:
        response.headers[outcome.response_header[0]] = outcome.response_header[1]
    return response


ROUTES = [list_ledger, create_topup]
