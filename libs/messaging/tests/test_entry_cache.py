"""The cache scaffold's entry cache: one pure fold per event, keyed by the event's stream, and the
follower's readiness and progress seen through the cache."""

from __future__ import annotations

import types

import msgspec

from authpi.contracts.base import Event
from authpi.contracts.directory import ClientBlocked, ClientUnblocked
from authpi.messaging.entries import EntryCache, EntryProjection
from authpi.messaging.follower import Feed


class Seen(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    issuer_id: str
    status: str
    version: int


def evolve(entry: Seen | None, event: Event, version: int, account_id: str) -> Seen | None:
    if entry is not None and version <= entry.version:
        return entry
    if isinstance(event, ClientBlocked | ClientUnblocked):
        return Seen(id=event.id, issuer_id=account_id, status=event.status, version=version)
    return entry


def env(stream_id: str, version: int) -> types.SimpleNamespace:
    meta = types.SimpleNamespace(account_id="acc_1")
    return types.SimpleNamespace(stream_id=stream_id, stream_version=version, meta=meta)


def cache() -> EntryCache[Seen]:
    view = EntryProjection(
        name="test-seen", schema="t", table="seen_view", event_types=("client.blocked",),
        entry_type=Seen, evolve=evolve,
    )  # fmt: skip
    return EntryCache(Feed(None, None, "t", "t"), view, "client.>")


def test_each_event_folds_into_its_streams_entry():
    seen = cache()
    seen.receive(env("c_1", 1), ClientBlocked(id="c_1", issuer_id="i_1", status_at=1))  # type: ignore[arg-type]
    seen.receive(env("c_2", 1), ClientBlocked(id="c_2", issuer_id="i_1", status_at=1))  # type: ignore[arg-type]
    seen.receive(env("c_1", 2), ClientUnblocked(id="c_1", issuer_id="i_1", status_at=2))  # type: ignore[arg-type]
    assert seen.get("c_1") == Seen(id="c_1", issuer_id="acc_1", status="active", version=2)
    assert len(seen) == 2


def test_a_replayed_event_changes_nothing_and_a_cold_cache_is_not_warm():
    seen = cache()
    seen.receive(env("c_1", 2), ClientUnblocked(id="c_1", issuer_id="i_1", status_at=2))  # type: ignore[arg-type]
    seen.receive(env("c_1", 1), ClientBlocked(id="c_1", issuer_id="i_1", status_at=1))  # type: ignore[arg-type]
    assert seen.get("c_1").status == "active"  # type: ignore[union-attr]
    assert not seen.warm.is_set() and seen.last_seq == 0
    assert seen.follower.name == "follower:test-seen"
