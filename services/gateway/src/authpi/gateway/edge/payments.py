"""The 402 gate of Core API writes (platform.md 5.6, 5.10; OP-11). When billing is enforced for
the deployment every account is `gated` (no post-paid method exists in this build), and a write
(POST, PATCH, DELETE) on an account whose balance is at or below zero answers 402: the x402 v2
challenge in `PAYMENT-REQUIRED` and a body that is both an AuthPI error and the v1 challenge.
Reads are never gated, nor is anything on the IdP port; the billing routes themselves (credits,
payment methods) stay open so that an account can always fund itself.

The retried request carries `PAYMENT-SIGNATURE` (v2) or `X-PAYMENT` (v1): the payment is
verified, settled and credited by `Payments.pay` (idempotent on the payment), then the original
request runs and its response gets `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`. With enforcement
off (the self-hosted default, OP-9) this layer passes every request straight through."""

from __future__ import annotations

import re
from typing import Any

from litestar import Request
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from authpi.contracts.billing import Challenge, Payments
from authpi.errors import AuthpiError, PaymentRequired, ServerError
from authpi.gateway.caches.balances import AccountBalances
from authpi.web.opts import ANONYMOUS
from authpi.web.principal import principal_of

WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
PAYMENT_HEADERS = ("payment-signature", "x-payment")
# The routes an account funds itself with: never gated.
_BILLING = re.compile(r"^/v1/accounts/[^/]+/(credits|payment-methods)(/|$)")


def _usd(amount: int) -> str:
    return f"{amount / 1_000_000:.2f}"


def _amount(challenge: Challenge) -> int:
    accepts = challenge.body_v1.get("accepts") or [{}]
    try:
        return int(str(accepts[0].get("maxAmountRequired", "0")))
    except (ValueError, AttributeError):
        return 0


def challenge_error(account_id: str, challenge: Challenge | None) -> PaymentRequired:
    """The 402 answer (platform.md 5.6). Without x402 configured there is nothing to pay: the
    body says so, with an empty `accepts`."""
    if challenge is None:
        return PaymentRequired(
            f"Account {account_id} has no prepaid credit, and this deployment accepts no x402"
            " payment: ask the operator to credit it.",
            reason="billing.payment_required", x402_version=1, accepts=[],
        )  # fmt: skip
    return PaymentRequired(
        f"Account {account_id} has no prepaid credit. Pay the challenge to top up"
        f" {_usd(_amount(challenge))} USD.",
        reason="billing.payment_required",
        x402_version=int(challenge.body_v1.get("x402Version", 1)),
        accepts=list(challenge.body_v1.get("accepts", [])),
        headers={"PAYMENT-REQUIRED": challenge.header_v2},
    )  # fmt: skip


class PaymentGate:
    """What the layer decides with: whether billing is enforced, each account's balance, and
    the x402 side (connected by the host; None until a chain is configured)."""

    def __init__(self, *, enforced: bool, balances: AccountBalances, api_url: str) -> None:
        self.enforced = enforced
        self.balances = balances
        self.api_url = api_url.rstrip("/")
        self.payments: Payments | None = None

    def gated(self, method: str, path: str, account_id: str) -> bool:
        if not self.enforced or method not in WRITES or not account_id:
            return False
        if _BILLING.match(path):
            return False
        return self.balances.balance(account_id) <= 0

    def resource_url(self, scope: Scope) -> str:
        query = scope.get("query_string", b"").decode("latin-1")
        return self.api_url + scope["path"] + (f"?{query}" if query else "")


class PaymentGateLayer(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)
    exclude_opt_key = ANONYMOUS

    def __init__(self, gate: PaymentGate) -> None:
        self.gate = gate

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        gate = self.gate
        if not gate.enforced or scope["method"] not in WRITES:
            await next_app(scope, receive, send)
            return
        principal = principal_of(Request[Any, Any, Any](scope, receive))
        account_id = principal.account_id
        if not gate.gated(scope["method"], scope["path"], account_id):
            await next_app(scope, receive, send)
            return
        headers = Headers.from_scope(scope)
        url = gate.resource_url(scope)
        payments = gate.payments
        if payments is None:
            raise challenge_error(account_id, None)
        if not any(headers.get(name) for name in PAYMENT_HEADERS):
            raise challenge_error(account_id, await payments.challenge(account_id, url))
        sent = {name.lower(): value for name, value in headers.items()}
        outcome = await payments.pay(account_id, sent, url)
        if not outcome.ok:
            if isinstance(outcome.error, AuthpiError):
                raise outcome.error
            raise ServerError("the payment could not be processed", reason="billing.pay_failed")
        extra = outcome.response_header

        async def with_settlement(message: Message) -> None:
            if message["type"] == "http.response.start" and extra is not None:
                headers = [*message.get("headers", [])]
                headers.append((extra[0].lower().encode("latin-1"), extra[1].encode("latin-1")))
                message = {**message, "headers": headers}  # type: ignore[typeddict-item]
            await send(message)

        await next_app(scope, receive, with_settlement)
