"""Where the billing routes reach x402 (platform.md 5.6-5.9): the `Payments` implementation the
service builds when a chain is configured, or none. A 402 challenge is rendered from it here,
for the explicit top-up route; the gateway renders its own from the same protocol."""

from __future__ import annotations

from collections.abc import Mapping

from authpi.contracts.billing import Challenge, Payments
from authpi.errors import PaymentRequired, Unprocessable

PAYMENT_HEADERS = ("payment-signature", "x-payment")


class PaymentsPort:
    def __init__(self, payments: Payments | None = None) -> None:
        self.payments = payments

    def require(self) -> Payments:
        if self.payments is None:
            raise Unprocessable(
                "x402 top-ups are not configured on this deployment",
                reason="billing.payments_unconfigured",
            )
        return self.payments


def carries_payment(headers: Mapping[str, str]) -> bool:
    return any(headers.get(name) for name in PAYMENT_HEADERS)


def amount_of(challenge: Challenge) -> int:
    """The μUSD a challenge asks for (its first requirement), 0 when it names none."""
    accepts = challenge.body_v1.get("accepts") or [{}]
    try:
        return int(str(accepts[0].get("maxAmountRequired", "0")))
    except (ValueError, AttributeError):
        return 0


def payment_required(challenge: Challenge, description: str) -> PaymentRequired:
    """The 402 of platform.md 5.6: the v2 challenge in `PAYMENT-REQUIRED`, the v1 one in the
    body beside the AuthPI error fields."""
    return PaymentRequired(
        description, reason="billing.payment_required",
        x402_version=int(challenge.body_v1.get("x402Version", 1)),
        accepts=list(challenge.body_v1.get("accepts", [])),
        headers={"PAYMENT-REQUIRED": challenge.header_v2},
    )  # fmt: skip


def usd(amount: int) -> str:
    return f"{amount / 1_000_000:.2f}"
