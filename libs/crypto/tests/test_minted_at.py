"""`minted_at`: the creation time of a public id minted here, read in the format its prefix has
(platform.md 1.3), so a miss on a fresh id may wait and anything else is refused at once."""

from __future__ import annotations

from authpi.crypto.ids import RandomIds, base36, minted_at, uuid7

MS = 1_700_000_000_000


def test_each_prefix_is_read_in_its_own_format():
    hex_id = f"{uuid7(MS, bytes(10)):032x}"
    b36_id = base36(uuid7(MS, bytes(10)))
    assert minted_at(f"agt_{hex_id}", "agt") == MS
    assert minted_at(f"i_{b36_id}", "i") == MS
    assert minted_at(f"agt_{b36_id}", "agt") is None  # agt_ ids are hex
    assert minted_at(f"i_{hex_id}", "i") is None  # i_ ids are base36


def test_fresh_ids_of_every_kind_carry_their_time():
    ids = RandomIds()
    for prefix in ("agt", "key", "ptk", "acc", "i", "usr", "org"):
        minted = minted_at(ids.new(prefix), prefix)
        assert minted is not None and minted > MS


def test_other_prefixes_and_non_uuid7_bodies_have_no_time():
    ids = RandomIds()
    assert minted_at(ids.new("agt"), "key") is None
    assert minted_at("agt_" + "0" * 32, "agt") is None  # version nibble is not 7
    assert minted_at("i_" + "z" * 25, "i") is None  # over 128 bits
    assert minted_at("agt_" + "A" * 32, "agt") is None
    assert minted_at("agt", "agt") is None
