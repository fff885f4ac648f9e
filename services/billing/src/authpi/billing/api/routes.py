"""The router of the billing routes, with their dependencies."""

from __future__ import annotations

from litestar import Router

from authpi.billing.api import credits, methods, usage
from authpi.billing.domain.rates import RateCard
from authpi.billing.handlers.ledger import Ledger
from authpi.billing.handlers.payments import PaymentsPort
from authpi.web.core import provide


def billing_router(ledger: Ledger, payments: PaymentsPort, rates: RateCard) -> Router:
    return Router(
        "/",
        route_handlers=[*credits.ROUTES, *usage.ROUTES, *methods.ROUTES],
        dependencies={
            "ledger": provide(ledger), "payments": provide(payments), "rates": provide(rates)
        },
    )  # fmt: skip
