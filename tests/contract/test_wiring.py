"""The wiring between the parts of one process (`authpi.platform.modules.wire`), which the main
process and every IdP worker apply once all parts are built: the token service's signup registry
reaches the directory's UserRegistry, and nothing else crosses between services."""

from __future__ import annotations

import pytest

from authpi.contracts.directory import UserRegistry
from authpi.errors import TemporarilyUnavailable
from authpi.platform.modules import all_modules, wire
from authpi.platform.proto import offline_runtime


async def test_the_token_registry_is_wired_to_the_directory_in_process():
    rt = offline_runtime()
    parts = [await module.build(rt) for module in all_modules()]
    exports = {p.name: p.exports for p in parts}
    registry, directory = exports["token"]["registry"], exports["directory"]["user_registry"]
    assert isinstance(directory, UserRegistry)
    assert not registry.connected

    wire(parts)

    assert registry.connected and registry._directory is directory


async def test_without_the_directory_the_registry_stays_unwired():
    rt = offline_runtime()
    parts = [await module.build(rt) for module in all_modules() if module.name != "directory"]
    wire(parts)
    registry = next(p for p in parts if p.name == "token").exports["registry"]
    assert not registry.connected
    with pytest.raises(TemporarilyUnavailable):
        await registry.register(
            account_id="acc_1", issuer_id="i_1", username_type="email",
            username="a@example.com", profile={},
        )  # fmt: skip


async def test_every_projection_can_be_replayed_by_name():
    """`authpi replay <name>` finds a projection by its name, locks it by its schema and reads
    the events of its types: every projection of every module has all three, and no two share a
    name."""
    rt = offline_runtime()
    parts = [await module.build(rt) for module in all_modules()]
    projections = [p for part in parts for p in (*part.projections, *part.inline_projections)]
    for projection in projections:
        assert isinstance(projection.name, str) and projection.name, projection
        assert isinstance(getattr(projection, "schema", None), str), projection.name
        assert isinstance(projection.event_types, tuple | list), projection.name  # () is all
    names = [p.name for p in projections]
    assert len(names) == len(set(names))
