"""The rate card (platform.md 5.5): μUSD per operation for each metered dimension, with a
version that every usage entry records (`config_version`), and the monthly usage credit.
Operators configure it as JSON (AUTHPI_BILLING_RATES or AUTHPI_BILLING_RATES_FILE), e.g.
`{"version": "2026-06", "rates": {"human_auth": 50, "machine_auth": 50,
"api_key_verification": 20, "identity_lifecycle": 0}, "monthly_credit_μusd": 1000000}`; every
rate may be 0. Also here: billing periods (UTC months) and usage hours."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from authpi.contracts.billing import DIMENSIONS, MU

HOUR_MS = 3_600_000
DEFAULT_TOPUP = 1_000_000  # $1 (platform.md 5.1)


class RateCard(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: str
    rates: dict[str, int]
    monthly_credit: int = msgspec.field(default=1_000_000, name=f"monthly_credit_{MU}usd")

    def rate(self, dimension: str) -> int:
        return self.rates.get(dimension, 0)


DEFAULT_RATES = RateCard(
    version="2026-01",
    rates={"human_auth": 50, "machine_auth": 50, "api_key_verification": 20,
           "identity_lifecycle": 0},
)  # fmt: skip

# What each dimension is counted from, as the usage entry's `operation`.
OPERATIONS = {
    "human_auth": "human.sign-in",
    "machine_auth": "machine.token.issued",
    "api_key_verification": "api-key.verified",
    "identity_lifecycle": "identity.lifecycle",
}


def parse_rates(raw: str | bytes) -> RateCard:
    """A rate card from its JSON; refuses unknown dimensions and negative amounts."""
    try:
        card = msgspec.json.decode(raw, type=RateCard)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"AUTHPI_BILLING_RATES: {exc}") from None
    unknown = set(card.rates) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"AUTHPI_BILLING_RATES: unknown dimensions {sorted(unknown)}")
    if any(v < 0 for v in card.rates.values()) or card.monthly_credit < 0:
        raise ValueError("AUTHPI_BILLING_RATES: rates and the monthly credit are >= 0")
    if not card.version.strip():
        raise ValueError("AUTHPI_BILLING_RATES: a version is required")
    return card


def load_rates(raw: str | None, path: Path | None) -> RateCard:
    if raw:
        return parse_rates(raw)
    if path is not None:
        return parse_rates(path.read_bytes())
    return DEFAULT_RATES


def hour_of(ms: int) -> int:
    return ms - ms % HOUR_MS


def period_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


def period_bounds(period: str) -> tuple[int, int]:
    """[start, end) of a YYYY-MM period in Unix ms; ValueError when it is not one."""
    if len(period) != 7 or period[4] != "-":
        raise ValueError(period)
    year, month = int(period[:4]), int(period[5:])
    if not 1 <= month <= 12 or not 2000 <= year <= 9999:
        raise ValueError(period)
    start = datetime(year, month, 1, tzinfo=UTC)
    days = calendar.monthrange(year, month)[1]
    end_ms = int(start.timestamp() * 1000) + days * 24 * HOUR_MS
    return int(start.timestamp() * 1000), end_ms


def billing_mode(enforcement: bool, postpaid_enabled: bool) -> str:
    """platform.md 5.2: `gated` when every enabled method is prepaid (x402); `ungated` when a
    post-paid method is enabled or enforcement is off for the deployment (OP-9)."""
    if not enforcement or postpaid_enabled:
        return "ungated"
    return "gated"
