"""Who may touch webhooks (core-api.md 5.1, 5.2): `webhooks:read` lists and gets, `write`
creates and updates, `delete` deletes, and regenerating a secret needs `webhooks:manage`; a key
without webhook scopes gets 403 `insufficient_scope`. Account isolation: another account's key
neither sees nor changes a webhook, and its ids name nothing in the delivery engine's reads."""

from __future__ import annotations

import pytest
from authpi_admin.errors import ForbiddenError, NotFoundError

from authpi.contracts.scopes import ALL_SCOPES


async def test_a_key_without_webhook_scopes_is_refused_everywhere(tenant, kit):
    created = await tenant.webhooks().create(kit.body())
    key = await tenant.key_with([s for s in ALL_SCOPES if not s.startswith("webhooks:")])
    hooks = tenant.webhooks(key)
    calls = [
        hooks.list(),
        hooks.get(created.id),
        hooks.create(kit.body()),
        hooks.update(created.id, {"name": "x"}),
        hooks.delete(created.id),
    ]
    for call in calls:
        with pytest.raises(ForbiddenError) as caught:
            await call
        assert caught.value.error == "insufficient_scope"
    assert (await tenant.webhooks().get(created.id)).name == "User Events"


async def test_each_action_needs_its_own_scope(tenant, kit):
    created = await tenant.webhooks().create(kit.body())
    reader = tenant.webhooks(await tenant.key_with(["webhooks:read"]))
    assert (await reader.get(created.id)).id == created.id
    assert [w.id for w in (await reader.list()).data] == [created.id]
    with pytest.raises(ForbiddenError):
        await reader.update(created.id, {"name": "x"})
    writer = tenant.webhooks(await tenant.key_with(["webhooks:write"]))
    assert (await writer.update(created.id, {"name": "w"})).name == "w"
    with pytest.raises(ForbiddenError):
        await writer.delete(created.id)
    with pytest.raises(ForbiddenError) as caught:
        await writer.update(created.id, {"auth": {"type": "signature", "regenerate_secret": True}})
    assert "webhooks:manage" in caught.value.error_description
    manager = tenant.webhooks(await tenant.key_with(["webhooks:manage"]))
    regenerated = await manager.update(
        created.id, {"auth": {"type": "signature", "regenerate_secret": True}}
    )
    assert regenerated.auth.model_dump()["signature_secret_plain"].startswith("whs_")
    deleter = tenant.webhooks(await tenant.key_with(["webhooks:delete"]))
    with pytest.raises(ForbiddenError):
        await deleter.get(created.id)
    await deleter.delete(created.id)


async def test_another_accounts_key_neither_sees_nor_changes_a_webhook(platform, tenant, kit):
    mine = await tenant.webhooks().create(kit.body())
    other = await kit.new_tenant(platform)
    theirs = other.webhooks()
    assert (await theirs.list()).data == []
    assert (await theirs.list(status="active")).data == []
    with pytest.raises(NotFoundError):
        await theirs.get(mine.id)
    with pytest.raises(NotFoundError):
        await theirs.update(mine.id, {"name": "stolen"})
    with pytest.raises(NotFoundError):
        await theirs.delete(mine.id)
    async with other.http() as http:
        # Its key on the first account's path: refused before any webhook is looked at.
        response = await http.get(tenant.path)
        assert response.status_code in (403, 404)
        response = await http.get(f"{tenant.path}/{mine.id}")
        assert response.status_code in (403, 404)
    assert (await tenant.webhooks().get(mine.id)).name == "User Events"
    assert [w.id for w in (await tenant.webhooks().list()).data] == [mine.id]
