"""The billing service's own views: `inline_views` is its registry of inline projections."""

from __future__ import annotations

from authpi.billing.projections.ledger import LedgerView
from authpi.messaging.projection import Projection


def inline_views(schema: str) -> list[Projection]:
    return [LedgerView(schema)]
