"""Pure helpers: tallying token facts per verifier, and the creation time of UUIDv7 ids that the
issuer gate uses to wait for an issuer created a moment ago."""

from __future__ import annotations

from authpi.agent.reactions.usage import Tally, tally
from authpi.crypto.ids import RandomIds, minted_at
from services.agent.tests.factories import token_issued


def test_tally_counts_agent_facts_per_verifier_with_the_latest_time():
    tallies: dict[str, Tally] = {}
    tally(
        [
            token_issued("agt_1", "avf_1", 5),
            token_issued("agt_1", "avf_1", 3),
            token_issued(None, None, 9),
            token_issued("agt_1", None, 9),
            token_issued("agt_2", "avf_2", 7),
        ],
        tallies,
    )
    assert tallies == {
        "avf_1": Tally(count=2, last_used_at=5),
        "avf_2": Tally(count=1, last_used_at=7),
    }


def test_minted_at_reads_base36_uuidv7_ids_only():
    ids = RandomIds()
    issuer_id = ids.new("i")
    assert abs(minted_at(issuer_id, "i") - __import__("time").time() * 1000) < 5_000
    assert minted_at("i_" + "0" * 25, "i") is None  # not a UUIDv7
    assert minted_at("i_nope", "i") is None and minted_at(ids.new("agt"), "i") is None
    assert minted_at("i_" + "z" * 25, "i") is None
