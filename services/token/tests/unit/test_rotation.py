"""The rotation contract as pure functions (idp-api.md 13.3)."""

from __future__ import annotations

from datetime import UTC, datetime

from authpi.token.domain.rotation import DAY_MS, KeyAge, last_rotation_at, next_rotation_after, plan


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def generation(tag: str, created_at: int) -> list[KeyAge]:
    return [
        KeyAge(kid=f"{tag}-{alg}", alg=alg, created_at=created_at)
        for alg in ("ES256", "EdDSA", "RS256")
    ]


def test_rotation_instants_are_the_last_day_of_the_month_at_one_utc():
    assert last_rotation_at(ms(2026, 3, 15)) == ms(2026, 2, 28, 1)
    assert last_rotation_at(ms(2028, 3, 1)) == ms(2028, 2, 29, 1)
    assert last_rotation_at(ms(2026, 1, 31, 0, 59)) == ms(2025, 12, 31, 1)
    assert last_rotation_at(ms(2026, 1, 31, 1)) == ms(2026, 1, 31, 1)
    assert next_rotation_after(ms(2026, 1, 31, 1)) == ms(2026, 2, 28, 1)
    assert next_rotation_after(ms(2026, 12, 31, 2)) == ms(2027, 1, 31, 1)


def test_a_new_issuer_gets_one_key_per_algorithm():
    todo = plan([], ms(2026, 3, 15))
    assert todo.create == ["ES256", "EdDSA", "RS256"] and todo.retire == []


def test_keys_newer_than_the_last_rotation_are_left_alone():
    assert plan(generation("a", ms(2026, 3, 1)), ms(2026, 3, 15)).empty


def test_after_the_rotation_instant_every_algorithm_gets_a_new_key():
    todo = plan(generation("a", ms(2026, 3, 1)), ms(2026, 3, 31, 1, 5))
    assert todo.create == ["ES256", "EdDSA", "RS256"] and todo.retire == []


def test_a_key_is_dropped_at_the_first_rotation_after_its_45th_day():
    keys = generation("a", ms(2026, 3, 1)) + generation("b", ms(2026, 3, 31, 1))
    assert plan(keys, ms(2026, 4, 15)).empty  # 45 days old, but no rotation since
    todo = plan(keys, ms(2026, 4, 30, 1))
    assert sorted(todo.retire) == sorted(k.kid for k in generation("a", 0))
    assert todo.create == ["ES256", "EdDSA", "RS256"]


def test_the_newest_key_of_an_algorithm_is_never_retired():
    old = [KeyAge(kid="only", alg="ES256", created_at=ms(2026, 1, 1))]
    keys = old + generation("b", ms(2026, 4, 30, 2))[1:]
    todo = plan(keys, ms(2026, 4, 30, 3))
    assert todo.create == ["ES256"] and todo.retire == ["only"]
    assert "only" not in plan(old, ms(2026, 1, 2)).retire
    assert ms(2026, 4, 30, 1) - ms(2026, 1, 1) > 45 * DAY_MS
