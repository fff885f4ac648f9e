"""The facilitator interface of platform.md 5.9, served by the billing service on the Core API
port under `/x402` (a facilitator base URL of `<api_url>/x402`): `POST /x402/verify`,
`POST /x402/settle`, `GET /x402/supported`. No credential: like public facilitators, it only
checks and settles payments, and only those to this deployment's treasury, on its network and
token (anything else is `invalid_payment_requirements`); the chain refuses a replayed
authorization. Crediting an account is the Core API's business (`…/credits/topups`, 402 retries).
Without a chain configured the routes answer `422 billing.payments_unconfigured`.

Open to anyone, so limited per client address like the credentialed routes (core-api.md 2.5):
`/verify` and `/settle`, each a few calls to the chain's node, in the `auth-sensitive` class
(120 a minute by default), `/supported` in `read`."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Router, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from authpi.billing.x402.facilitator import Facilitator, supported
from authpi.billing.x402.payments import ChainConfig
from authpi.billing.x402.wire import (
    Payment,
    Refusal,
    Requirement,
    caip2_network,
    read_payment,
    settlement_response,
)
from authpi.crypto.clock import Clock
from authpi.errors import Unprocessable
from authpi.web.core import provide
from authpi.web.opts import ANONYMOUS, AUTH_SENSITIVE, RATE_CLASS, READ

PREFIX = "/x402"
TAGS = ["x402 facilitator"]
PAYMENT_CALL = {ANONYMOUS: True, RATE_CLASS: AUTH_SENSITIVE}


class FacilitatorService:
    def __init__(self, facilitator: Facilitator, config: ChainConfig, clock: Clock) -> None:
        self.facilitator = facilitator
        self.config = config
        self.clock = clock

    def parse(self, body: Any) -> tuple[Payment, Requirement]:
        if not isinstance(body, dict):
            raise Refusal("invalid_payload", "the body must be a JSON object", status=400)
        payload, requirements = body.get("paymentPayload"), body.get("paymentRequirements")  # type: ignore[union-attr]
        if not isinstance(payload, dict):
            raise Refusal("invalid_payload", "`paymentPayload` must be an object", status=400)
        payment = read_payment(payload)  # type: ignore[arg-type]
        if not isinstance(requirements, dict):
            raise Refusal(
                "invalid_payment_requirements", "`paymentRequirements` must be an object",
                payer=payment.payer, status=400,
            )  # fmt: skip
        return payment, self.requirement(requirements, payment)  # type: ignore[arg-type]

    def requirement(self, raw: dict[str, Any], payment: Payment) -> Requirement:
        c = self.config
        amount = raw.get("amount", raw.get("maxAmountRequired"))
        extra = raw.get("extra") if isinstance(raw.get("extra"), dict) else {}
        try:
            value = int(str(amount))
        except ValueError:
            value = -1
        timeout = raw.get("maxTimeoutSeconds") or c.max_timeout_s
        ours = (
            raw.get("scheme") == "exact"
            and caip2_network(str(raw.get("network", ""))) == c.network
            and str(raw.get("asset", "")).lower() == c.asset.lower()
            and str(raw.get("payTo", "")).lower() == c.pay_to.lower()
            and value > 0
            and extra.get("name", c.asset_name) == c.asset_name  # type: ignore[union-attr]
            and extra.get("version", c.asset_version) == c.asset_version  # type: ignore[union-attr]
            # A whole number of seconds: `"abc"` or `[1]` here once answered 500.
            and isinstance(timeout, int)
            and not isinstance(timeout, bool)
            and timeout > 0
        )
        if not ours:
            raise Refusal(
                "invalid_payment_requirements",
                "these requirements are not this deployment's network, token and treasury",
                payer=payment.payer,
            )
        return Requirement(
            network=c.network, asset=c.asset, pay_to=c.pay_to, amount=value, name=c.asset_name,
            version=c.asset_version, max_timeout_seconds=timeout,
        )  # fmt: skip

    async def verify(self, body: Any) -> dict[str, Any]:
        payer: str | None = None
        try:
            payment, req = self.parse(body)
            payer = payment.payer
            if payment.accepted is None:  # v1: the requirements were sent beside it
                payment = _with_accepted(payment, req)
            await self.facilitator.verify(payment, req, self.clock.now_ms() // 1000)
        except Refusal as refusal:
            return {"isValid": False, "invalidReason": refusal.reason,
                    "payer": refusal.payer or payer}  # fmt: skip
        return {"isValid": True, "payer": payer}

    async def settle(self, body: Any) -> dict[str, Any]:
        payer: str | None = None
        network = self.config.network
        try:
            payment, req = self.parse(body)
            payer = payment.payer
            if payment.accepted is None:
                payment = _with_accepted(payment, req)
            await self.facilitator.verify(payment, req, self.clock.now_ms() // 1000)
            tx_hash = await self.facilitator.settle(payment, req)
        except Refusal as refusal:
            return settlement_response(
                success=False,
                payer=refusal.payer or payer,
                transaction="",
                network=network,
                reason=refusal.reason,
            )
        return settlement_response(success=True, payer=payer, transaction=tx_hash, network=network)


def configured(service: FacilitatorService | None) -> FacilitatorService:
    if service is None:
        raise Unprocessable(
            "x402 is not configured on this deployment: no chain to verify or settle on",
            reason="billing.payments_unconfigured",
        )
    return service


def _with_accepted(payment: Payment, req: Requirement) -> Payment:
    return msgspec.structs.replace(payment, accepted=req.v2())


class X402FacilitatorRequest(msgspec.Struct, rename="camel", kw_only=True):
    """The body of `/verify` and `/settle` (platform.md 5.9): the client's PaymentPayload and
    the PaymentRequirements it was paid against (v1 or v2 form, platform.md 5.7)."""

    payment_payload: dict[str, Any]
    payment_requirements: dict[str, Any]
    x402_version: int | None = None


class X402VerifyResponse(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    is_valid: bool
    invalid_reason: str | None = None
    payer: str | None = None


class X402SettleResponse(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    success: bool
    transaction: str
    network: str
    payer: str | None = None
    error_reason: str | None = None


class X402SupportedKind(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    x402_version: int
    scheme: str
    network: str
    extra: dict[str, Any] | None = None


class X402SupportedResponse(msgspec.Struct, kw_only=True):
    kinds: list[X402SupportedKind]
    extensions: list[str]
    signers: dict[str, list[str]]


def _body(data: JSONBody[X402FacilitatorRequest]) -> dict[str, Any]:
    return {"paymentPayload": data.payment_payload,
            "paymentRequirements": data.payment_requirements}  # fmt: skip


@post(PREFIX + "/verify", status_code=200, opt={**PAYMENT_CALL}, tags=TAGS,
      operation_id="verifyX402Payment",
      summary="Verify an x402 payment (facilitator interface, no on-chain effect)")  # fmt: skip
async def verify_payment(
    facilitator_service: NamedDependency[FacilitatorService | None],
    data: JSONBody[X402FacilitatorRequest],
) -> X402VerifyResponse:
    answer = await configured(facilitator_service).verify(_body(data))
    return msgspec.convert(answer, X402VerifyResponse)


@post(PREFIX + "/settle", status_code=200, opt={**PAYMENT_CALL}, tags=TAGS,
      operation_id="settleX402Payment",
      summary="Settle an x402 payment on chain (facilitator interface)")  # fmt: skip
async def settle_payment(
    facilitator_service: NamedDependency[FacilitatorService | None],
    data: JSONBody[X402FacilitatorRequest],
) -> X402SettleResponse:
    answer = await configured(facilitator_service).settle(_body(data))
    return msgspec.convert(answer, X402SettleResponse)


@get(PREFIX + "/supported", opt={ANONYMOUS: True, RATE_CLASS: READ}, tags=TAGS,
     operation_id="getX402Supported",
     summary="Payment kinds this facilitator supports")  # fmt: skip
async def supported_kinds(
    facilitator_service: NamedDependency[FacilitatorService | None],
) -> X402SupportedResponse:
    s = configured(facilitator_service)
    return msgspec.convert(supported(s.config.network, s.facilitator.signers()),
                           X402SupportedResponse)  # fmt: skip


def facilitator_router(service: FacilitatorService | None) -> Router:
    return Router(
        "/",
        route_handlers=[verify_payment, settle_payment, supported_kinds],
        dependencies={"facilitator_service": provide(service)},
    )
