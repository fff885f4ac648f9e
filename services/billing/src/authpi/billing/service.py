"""The billing service as a process part (platform.md 5): the credit ledger of every account
(`exports["ledger"]`), its Core API routes (credits, usage, invoices, payment methods), the
metering of the batched facts (`billing-metering`) and the singleton task that closes usage hours
into ledger entries.

x402 (platform.md 5.6-5.9) when a chain is configured (AUTHPI_BILLING_RPC_URL, or the local
chain `make run` starts with AUTHPI_BILLING_LOCAL_CHAIN, with a treasury and a settlement key):
`Payments` (`exports["payments"]`, which the host wires to the top-up route and the gateway's 402
gate), the facilitator routes (`/x402/verify`, `/x402/settle`, `/x402/supported`) and the
recovery task that credits a payment settled on chain whose ledger write was lost. Without a
chain the routes stay in the contract and answer `422 billing.payments_unconfigured`, and the
gate's 402 offers nothing to pay (`accepts: []`)."""

from __future__ import annotations

from pathlib import Path

from authpi.billing.api.routes import billing_router
from authpi.billing.domain.rates import load_rates
from authpi.billing.handlers.ledger import Ledger
from authpi.billing.handlers.metering import Metering
from authpi.billing.handlers.payments import PaymentsPort
from authpi.billing.reactions.lifecycle import LifecycleReaction
from authpi.billing.reactions.metering import MeteringReaction
from authpi.billing.x402.api import facilitator_router
from authpi.billing.x402.wiring import build_x402
from authpi.messaging.facts import FactProjection
from authpi.messaging.projection import Projection
from authpi.web.runtime import Runtime, ServiceModule, ServiceParts, Task

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


async def build(rt: Runtime) -> ServiceParts:
    settings = rt.settings
    rates = load_rates(settings.billing_rates, settings.billing_rates_file)
    ledger = Ledger(rt)
    x402 = build_x402(rt, ledger, ledger.x402_method)
    port = PaymentsPort(x402.payments)
    metering = Metering(ledger, rates, grace_s=settings.billing_close_grace_s)
    schema = rt.schema("billing")
    facts: list[FactProjection] = []
    projections: list[Projection] = []
    tasks: list[tuple[str, Task]] = [*x402.tasks]
    if settings.billing_metering:
        facts.append(MeteringReaction(schema, rt.clock))
        projections.append(LifecycleReaction(schema, rt.clock))
        tasks.append(("billing:usage-closer", metering.run))
    exports = {"ledger": ledger, "metering": metering, "payments_port": port, "rates": rates}
    if x402.payments is not None:
        exports["payments"] = x402.payments
    return ServiceParts(
        name="billing",
        core_routes=[billing_router(ledger, port, rates), facilitator_router(x402.facilitator)],
        inline_projections=ledger.views,
        projections=projections,
        fact_projections=facts,
        tasks=tasks,
        exports=exports,
    )


MODULE = ServiceModule(name="billing", migrations=MIGRATIONS, build=build)
