"""Usage, its estimate and invoices (platform.md 5.5, contract 4.31, 4.32). Usage of a period
(`period=YYYY-MM`, default the current one) is read from its closed hours, the usage entries of
the ledger, grouped by dimension, operation and rate-card version; the estimate adds the hours
still open, priced at the current rate card. These lists have no cursor (contract 3.4): one page,
`has_more` false. Scope `credits:read`."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery

from authpi.billing.api.models import EstimateOut, InvoiceOut, UsageLine, UsageOut
from authpi.billing.domain.rates import OPERATIONS, RateCard, period_bounds, period_of
from authpi.billing.handlers.ledger import Ledger
from authpi.errors import FieldProblem, InvalidRequest
from authpi.web.envelopes import One, Page
from authpi.web.guards import require_scope

ACCOUNT = "/v1/accounts/{account_id:str}"
TAGS = ["Usage"]
READ = [require_scope("credits:read")]
MAX_INVOICES = 100


def _period(raw: str | None, now: int) -> str:
    if raw is None:
        return period_of(now)
    try:
        period_bounds(raw)
    except ValueError:
        problem = FieldProblem(field="period", code="invalid_value",
                               message="period must be a month, YYYY-MM")  # fmt: skip
        raise InvalidRequest(problem.message, reason="usage.period", fields=[problem]) from None
    return raw


@get(ACCOUNT + "/usage", operation_id="getAccountUsage", summary="Get Account Usage by Dimension",
     tags=TAGS, guards=READ)  # fmt: skip
async def get_usage(
    account_id: FromPath[str], ledger: NamedDependency[Ledger], period: FromQuery[str | None] = None
) -> Page[UsageOut]:
    chosen = _period(period, ledger.rt.clock.now_ms())
    async with ledger.rt.pool.connection() as conn:
        rows = await ledger.queries.usage(conn, account_id, chosen)
    lines = [UsageLine.of(r) for r in rows]
    return Page(data=[UsageOut(period=chosen, lines=lines)], has_more=False, next_cursor=None)


@get(ACCOUNT + "/usage/estimate", operation_id="getAccountUsageEstimate",
     summary="Get Current-Period Usage Estimate", tags=TAGS, guards=READ)  # fmt: skip
async def get_estimate(
    account_id: FromPath[str], ledger: NamedDependency[Ledger], rates: NamedDependency[RateCard]
) -> One[EstimateOut]:
    now = ledger.rt.clock.now_ms()
    chosen = period_of(now)
    start, end = period_bounds(chosen)
    async with ledger.rt.pool.connection() as conn:
        closed = await ledger.queries.usage(conn, account_id, chosen)
        open_rows = await ledger.queries.open_usage(conn, account_id, start, end)
    lines = [UsageLine.of(r) for r in closed]
    for row in open_rows:
        lines.append(
            UsageLine(
                dimension=row.dimension, operation=OPERATIONS.get(row.dimension),
                config_version=rates.version, line_count=0,
                amount=row.count * rates.rate(row.dimension), count=row.count,
            )
        )  # fmt: skip
    total = sum(line.amount for line in lines)
    estimate = EstimateOut(
        period=chosen, as_of=now, trial=False, billing_profile=ledger.mode, estimate=True,
        total=max(0, total - rates.monthly_credit), lines=lines,
        usage_credit=rates.monthly_credit,
    )  # fmt: skip
    return One(estimate)


@get(ACCOUNT + "/invoices", operation_id="listAccountInvoices", summary="List Account Invoices",
     tags=["Invoices"], guards=READ)  # fmt: skip
async def list_invoices(
    account_id: FromPath[str],
    ledger: NamedDependency[Ledger],
    rates: NamedDependency[RateCard],
    limit: FromQuery[int | None] = None,
) -> Page[InvoiceOut]:
    """One statement per month with usage, newest first: the current month `open`, past ones
    `paid` (a prepaid account settles its usage from its balance). `total_μusd` is the usage
    charged after that month's usage credit."""
    if limit is not None and not 1 <= limit <= MAX_INVOICES:
        problem = FieldProblem(field="limit", code="out_of_range",
                               message=f"limit must be between 1 and {MAX_INVOICES}")  # fmt: skip
        raise InvalidRequest(problem.message, reason="page.limit", fields=[problem])
    current = period_of(ledger.rt.clock.now_ms())
    async with ledger.rt.pool.connection() as conn:
        rows = await ledger.queries.period_totals(conn, account_id, limit or MAX_INVOICES)
    invoices = [
        InvoiceOut(
            period=r.period, status="open" if r.period >= current else "paid",
            total=max(0, r.total - rates.monthly_credit),
        )
        for r in rows
    ]  # fmt: skip
    return Page(data=invoices, has_more=False, next_cursor=None)


ROUTES = [get_usage, get_estimate, list_invoices]
