"""What the metering consumer counts (platform.md 5.5): token issuance as machine_auth, human
sign-ins as human_auth, successful API-key checks as api_key_verification, per account and
hour; other facts (refreshes) are not metered. And the rate card's parsing."""

from __future__ import annotations

import pytest

from authpi.billing.domain.rates import DEFAULT_RATES, HOUR_MS, parse_rates, period_bounds
from authpi.billing.reactions.metering import tally
from authpi.contracts.facts import (
    ApiKeyVerified,
    HumanSignIn,
    MachineTokenIssued,
    SessionTokenRefreshed,
)

H = 1_780_000_000_000 - 1_780_000_000_000 % HOUR_MS


def test_each_fact_type_counts_in_its_dimension_and_hour():
    facts = [
        MachineTokenIssued(account_id="acc_a", issuer_id="i", client_id="c", scope="", aud="a",
                           jti="j", issued_at=H + 1, expires_at=H + 2),
        MachineTokenIssued(account_id="acc_a", issuer_id="i", client_id="c", scope="", aud="a",
                           jti="k", issued_at=H + HOUR_MS, expires_at=H + 2),
        HumanSignIn(account_id="acc_a", issuer_id="i", client_id="c", user_id="u",
                    session_id="s", op_session_id="o", method="password", signed_in_at=H + 5),
        ApiKeyVerified(account_id="acc_b", key_id="key_1", verified_at=H + 7),
        ApiKeyVerified(account_id="acc_b", key_id="key_2", verified_at=H + 8),
        SessionTokenRefreshed(account_id="acc_a", issuer_id="i", client_id="c", user_id="u",
                              session_id="s", jti="r", scope="", access_token_issued_at=H),
    ]  # fmt: skip
    assert tally(facts) == {
        ("acc_a", "machine_auth", H): 1,
        ("acc_a", "machine_auth", H + HOUR_MS): 1,
        ("acc_a", "human_auth", H): 1,
        ("acc_b", "api_key_verification", H): 2,
    }


def test_rate_card_defaults_and_zero_rates():
    assert DEFAULT_RATES.rate("machine_auth") == 50
    assert DEFAULT_RATES.rate("api_key_verification") == 20
    card = parse_rates(
        '{"version": "free", "rates": {"human_auth": 0, "machine_auth": 0},'
        ' "monthly_credit_\\u03bcusd": 0}'
    )
    assert (card.version, card.rate("human_auth"), card.monthly_credit) == ("free", 0, 0)


@pytest.mark.parametrize(
    "raw",
    [
        '{"version": "v", "rates": {"logins": 1}}',
        '{"version": "v", "rates": {"human_auth": -1}}',
        '{"version": " ", "rates": {}}',
        '{"rates": {}}',
        "not json",
    ],
)
def test_bad_rate_cards_are_refused(raw):
    with pytest.raises(ValueError):
        parse_rates(raw)


def test_period_bounds():
    start, end = period_bounds("2026-02")
    assert (end - start) == 28 * 24 * HOUR_MS
    with pytest.raises(ValueError):
        period_bounds("2026-13")
