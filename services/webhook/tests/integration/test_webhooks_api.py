"""Webhooks over real HTTP with the official SDK (platform.md 7.1-7.3, contract 4.10, 5.12):
create/get/list/update/delete, the secret shown once then only as a hint, regeneration with a
24-hour overlap, bearer tokens, statuses as webhook.paused/resumed, filters and settings
checked, errors in the spec's format, and secrets never in an event."""

from __future__ import annotations

import psycopg
import pytest
from authpi_admin.errors import (
    NotFoundError,
    PreconditionFailedError,
    ValidationError,
)

from authpi.contracts.public import WEBHOOK_EVENT_TYPES
from authpi.eventstore.sqltext import render
from authpi.webhook.queries.webhooks import credentials, target, targets

SECRET_LEN = len("whs_") + 43


async def test_sdk_creates_gets_lists_updates_and_deletes_a_webhook(tenant, platform, pool, kit):
    hooks = tenant.webhooks()
    created = await hooks.create(kit.body(description="sync", metadata={"team": "crm"}))
    assert created.id.startswith("wh_") and created.account_id == tenant.account_id
    assert created.status == "active" and created.url == "https://hooks.example.com/authpi"
    assert created.events == ["user.created", "user.updated", "user.deleted"]
    assert created._etag == f'"{created.created_at}"'
    auth = created.auth.model_dump()
    secret = auth["signature_secret_plain"]
    assert secret.startswith("whs_") and len(secret) == SECRET_LEN
    assert auth["type"] == "signature" and auth["signature_algorithm"] == "hmac-sha256"
    assert auth["signature_secret_hint"] == "..." + secret[-6:]

    fetched = await tenant.sdk().webhook(created.id).get()
    assert fetched.id == created.id and fetched.name == "User Events"
    assert fetched.auth.model_dump() == {
        "type": "signature", "signature_algorithm": "hmac-sha256",
        "signature_secret_hint": "..." + secret[-6:],
    }  # fmt: skip
    assert fetched.metadata.model_dump() == {"team": "crm"}

    listed = await hooks.list()
    assert [w.id for w in listed.data] == [created.id]
    assert listed.data[0].auth_type == "signature" and not listed.has_more

    updated = await hooks.update(
        created.id, {"name": "Renamed", "events": ["user.created"]}, if_match=created._etag
    )
    assert updated.name == "Renamed" and updated.events == ["user.created"]
    assert "signature_secret_plain" not in updated.auth.model_dump()
    assert updated.updated_at > created.created_at

    await hooks.delete(created.id)
    with pytest.raises(NotFoundError):
        await hooks.get(created.id)
    with pytest.raises(NotFoundError):
        await hooks.delete(created.id)
    assert (await hooks.list()).data == []
    deleted = await hooks.list(status="deleted")
    assert [w.id for w in deleted.data] == [created.id] and deleted.data[0].status == "deleted"
    types = [e["type"] for e in await kit.stored_events(platform, pool, created.id)]
    assert types == ["webhook.created", "webhook.updated", "webhook.deleted"]
    assert await kit.secret_rows(platform, pool, created.id) == []


async def test_the_secret_is_in_both_places_once_and_never_in_an_event(tenant, platform, pool, kit):
    async with tenant.http() as http:
        response = await http.post(tenant.path, json=kit.body())
    assert response.status_code == 201
    data = response.json()["data"]
    assert list(response.json()) == ["data"]
    secret = data["signature_secret_plain"]
    assert data["auth"]["signature_secret_plain"] == secret
    stored = await kit.stored_events(platform, pool, data["id"])
    assert secret not in str(stored) and secret[4:] not in str(stored)
    rows = await kit.secret_rows(platform, pool, data["id"])
    assert [r["kind"] for r in rows] == ["signature"]
    assert secret not in str(rows)  # sealed, with its data key wrapped by the KEK
    async with pool.connection() as conn:
        creds = await credentials(conn, kit.schema(platform), platform.handle.rt.kek, data["id"],
                                  data["created_at"])  # fmt: skip
    assert creds.signature_secrets == [secret] and creds.bearer_token is None


async def test_regenerate_returns_the_new_secret_once_and_keeps_the_old_for_24_hours(
    tenant, platform, pool, kit
):
    hooks = tenant.webhooks()
    created = await hooks.create(kit.body())
    old = created.auth.model_dump()["signature_secret_plain"]
    regenerated = await hooks.update(
        created.id, {"auth": {"type": "signature", "regenerate_secret": True}}
    )
    auth = regenerated.auth.model_dump()
    new = auth["signature_secret_plain"]
    assert (
        new != old and new.startswith("whs_") and auth["signature_secret_hint"] == "..." + new[-6:]
    )
    async with tenant.http() as http:
        raw = (await http.get(f"{tenant.path}/{created.id}")).json()["data"]
    assert raw["auth"]["signature_secret_hint"] == "..." + new[-6:]
    assert "signature_secret_plain" not in raw and "signature_secret_plain" not in raw["auth"]
    at = regenerated.updated_at
    async with pool.connection() as conn:
        schema, kek = kit.schema(platform), platform.handle.rt.kek
        during = await credentials(conn, schema, kek, created.id, at + 3600_000)
        after = await credentials(conn, schema, kek, created.id, at + 24 * 3600_000 + 1)
    assert during.signature_secrets == [new, old]
    assert after.signature_secrets == [new]


async def test_bearer_token_is_issued_once_and_type_changes_issue_what_is_missing(
    tenant, platform, pool, kit
):
    hooks = tenant.webhooks()
    created = await hooks.create(kit.body(auth={"type": "bearer"}))
    auth = created.auth.model_dump()
    token = auth["bearer_token_plain"]
    assert "signature_secret_plain" not in auth and auth["bearer_token_hint"] == "..." + token[-6:]
    async with tenant.http() as http:
        response = await http.patch(f"{tenant.path}/{created.id}",
                                    json={"auth": {"type": "bearer+signature"}})  # fmt: skip
    data = response.json()["data"]
    assert data["signature_secret_plain"].startswith("whs_")
    assert data["auth"]["signature_secret_plain"] == data["signature_secret_plain"]
    assert "bearer_token_plain" not in data
    async with pool.connection() as conn:
        creds = await credentials(conn, kit.schema(platform), platform.handle.rt.kek, created.id,
                                  data["updated_at"])  # fmt: skip
    assert creds.bearer_token == token
    assert creds.signature_secrets == [data["signature_secret_plain"]]


async def test_caller_supplied_secrets_are_kept(tenant, platform, pool, kit):
    secret = "whs_" + "Q" * 43
    created = await tenant.webhooks().create(kit.body(
        auth={"type": "bearer+signature", "signature_secret": secret,
              "bearer_token": "my-receiver-token-1234"}))  # fmt: skip
    assert created.auth.model_dump()["signature_secret_hint"] == "...QQQQQQ"
    async with pool.connection() as conn:
        creds = await credentials(conn, kit.schema(platform), platform.handle.rt.kek, created.id,
                                  created.created_at)  # fmt: skip
    assert creds.signature_secrets == [secret]
    assert creds.bearer_token == "my-receiver-token-1234"


async def test_the_older_create_body_is_accepted(tenant, kit):
    created = await tenant.webhooks().create(
        {
            "name": "legacy",
            "url": "https://hooks.example.com/x",
            "uses_signature": True,
            "events": ["user.created"],
        }
    )
    assert created.auth.model_dump()["type"] == "signature"


async def test_statuses_are_paused_and_resumed_events(tenant, platform, pool, kit):
    hooks = tenant.webhooks()
    created = await hooks.create(kit.body())
    disabled = await hooks.update(
        created.id, {"status": "disabled", "status_reason": "maintenance", "status_by": "ops"}
    )
    assert disabled.status == "disabled" and disabled.status_reason == "maintenance"
    assert disabled.status_by == "ops" and disabled.status_at == disabled.updated_at
    assert [w.id for w in (await hooks.list(status="disabled")).data] == [created.id]
    assert (await hooks.list(status="active")).data == []
    enabled = await hooks.update(created.id, {"status": "active"})
    assert enabled.status == "active" and enabled.status_reason is None
    types = [e["type"] for e in await kit.stored_events(platform, pool, created.id)]
    assert types == ["webhook.created", "webhook.paused", "webhook.resumed"]
    with pytest.raises(ValidationError):
        await hooks.update(created.id, {"status": "failing"})


async def test_the_breaker_transitions_for_the_delivery_engine(tenant, platform, pool, kit):
    hooks = tenant.webhooks()
    created = await hooks.create(kit.body())
    engine = kit.handlers(platform)
    await engine.close_circuit(tenant.account_id, created.id)  # not failing: nothing
    await engine.open_circuit(tenant.account_id, created.id)
    await engine.open_circuit(tenant.account_id, created.id)  # repeat-safe
    failing = await hooks.get(created.id)
    assert (failing.status, failing.status_by, failing.status_reason) == (
        "failing", "system", "circuit_open")  # fmt: skip
    assert [w.id for w in (await hooks.list(status="failing")).data] == [created.id]
    await engine.disable_failing(tenant.account_id, created.id)
    disabled = await hooks.get(created.id)
    assert (disabled.status, disabled.status_reason) == ("disabled", "circuit_open_expired")
    back = await hooks.update(created.id, {"status": "active"})
    assert back.status == "active"
    types = [e["type"] for e in await kit.stored_events(platform, pool, created.id)]
    assert types == ["webhook.created", "webhook.paused", "webhook.paused", "webhook.resumed"]


async def test_targets_show_settings_with_defaults(tenant, platform, pool, kit):
    hooks = tenant.webhooks()
    plain = await hooks.create(kit.body(events=None, auth={"type": "none"}))
    tuned = await hooks.create(kit.body(
        subjects=[{"issuer_id": "i_1"}, {"org_id": "org_2", "issuer_id": "i_3"}],
        retry={"max_attempts": 3, "backoff": "exponential"},
        circuit_breaker={"failure_threshold": 2, "probe_interval_seconds": 1,
                         "disable_after_seconds": 5},
    ))  # fmt: skip
    gone = await hooks.create(kit.body())
    await hooks.delete(gone.id)
    assert plain.events == list(WEBHOOK_EVENT_TYPES)  # null: every type, shown as all names
    async with pool.connection() as conn:
        schema = kit.schema(platform)
        mine = {t.id: t for t in await targets(conn, schema) if t.account_id == tenant.account_id}
        deleted = await target(conn, schema, gone.id)
    assert set(mine) == {plain.id, tuned.id}
    assert mine[plain.id].events is None and mine[plain.id].subjects is None
    assert (mine[plain.id].max_attempts, mine[plain.id].failure_threshold,
            mine[plain.id].probe_interval_seconds, mine[plain.id].disable_after_seconds) == (
        8, 20, 900, 259200)  # fmt: skip
    t = mine[tuned.id]
    assert t.events == frozenset(["user.created", "user.updated", "user.deleted"])
    assert t.subjects == [{"issuer_id": "i_1"}, {"org_id": "org_2", "issuer_id": "i_3"}]
    assert (t.max_attempts, t.failure_threshold, t.probe_interval_seconds,
            t.disable_after_seconds) == (3, 2, 1, 5)  # fmt: skip
    assert deleted is not None and deleted.status == "deleted"


async def test_list_pages_newest_first(tenant):
    hooks = tenant.webhooks()
    ids = [(await hooks.create({"name": f"h{i}", "url": "https://hooks.example.com/",
                                "auth": {"type": "none"}, "events": ["user.created"]})).id
           for i in range(5)]  # fmt: skip
    first = await hooks.list(limit=2)
    assert [w.id for w in first.data] == ids[::-1][:2] and first.has_more
    every = [w.id async for w in hooks.list_all(limit=2)]
    assert every == ids[::-1]


async def test_if_match_mismatch_is_412_with_the_current_etag(tenant, kit):
    hooks = tenant.webhooks()
    created = await hooks.create(kit.body())
    with pytest.raises(PreconditionFailedError) as caught:
        await hooks.update(created.id, {"name": "x"}, if_match='"1"')
    assert caught.value.current_etag == created._etag
    with pytest.raises(PreconditionFailedError):
        await hooks.delete(created.id, if_match='"1"')


def _field_codes(response) -> list[tuple[str, str]]:
    body = response.json()
    assert set(body) >= {"error", "error_description", "retryable"}
    return [(f["field"], f["code"]) for f in body.get("fields", [])]


@pytest.mark.parametrize(("patch", "field", "code"), [
    ({"events": []}, "events", "empty"),
    ({"events": ["user.*"]}, "events", "unknown_event_type"),
    ({"events": ["user.created", "nope.nothing"]}, "events", "unknown_event_type"),
    ({"url": "http://hooks.example.com/"}, "url", "insecure_url"),
    ({"url": "https://u:p@hooks.example.com/"}, "url", "credentials_in_url"),
    ({"url": "https://127.0.0.1/"}, "url", "forbidden_host"),
    ({"url": "https://169.254.169.254/"}, "url", "forbidden_host"),
    ({"url": "https://2130706433/"}, "url", "invalid_host"),
    ({"subjects": []}, "subjects", "empty"),
    ({"subjects": [{"color": "red"}]}, "subjects", "unknown_subject_key"),
    ({"retry": {"max_attempts": 21}}, "retry.max_attempts", "out_of_range"),
    ({"retry": {"max_attempts": 3, "backoff": "linear"}}, "retry.backoff", "invalid_value"),
    ({"circuit_breaker": {"failure_threshold": 0}}, "circuit_breaker.failure_threshold",
     "out_of_range"),
    ({"circuit_breaker": {"nope": 1}}, "circuit_breaker", "unknown_key"),
    ({"auth": {"type": "hmac"}}, "auth.type", "invalid_value"),
    ({"auth": {"type": "signature", "signature_algorithm": "md5"}},
     "auth.signature_algorithm", "invalid_value"),
])  # fmt: skip
async def test_bad_settings_are_400_with_fields_and_store_nothing(
    tenant, platform, pool, kit, patch, field, code
):
    before = await kit.count_events(platform, pool)
    async with tenant.http() as http:
        response = await http.post(tenant.path, json=kit.body(**patch))
    # The body's types are checked as it is decoded (422); its rules after (400).
    assert response.status_code == (422 if field == "auth.type" else 400), response.text
    assert response.json()["error"] == "invalid_request"
    assert (field, code) in _field_codes(response)
    assert await kit.count_events(platform, pool) == before


@pytest.mark.parametrize("payload", [
    {"url": "https://hooks.example.com/"},  # no name
    {"name": "x"},  # no url
    {"name": "x", "url": "https://hooks.example.com/"},  # no auth
    {"name": "", "url": "https://hooks.example.com/", "auth": {"type": "none"}},
    {"name": "x", "url": "https://hooks.example.com/", "auth": {}},
    {"name": "x", "url": "https://hooks.example.com/", "auth": {"type": "none"},
     "status": "failing"},
    {"name": "x", "url": "https://hooks.example.com/", "auth": "signature"},
    {"name": "x\u0000", "url": "https://hooks.example.com/", "auth": {"type": "none"}},
])  # fmt: skip
async def test_malformed_create_bodies_are_refused_without_a_5xx(tenant, payload):
    async with tenant.http() as http:
        response = await http.post(tenant.path, json=payload)
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) >= {"error", "error_description", "retryable"}


async def test_unknown_or_foreign_ids_are_404(tenant):
    async with tenant.http() as http:
        for webhook_id in ("wh_nothing", "nope", "wh_" + "x" * 300):
            response = await http.get(f"{tenant.path}/{webhook_id}")
            assert response.status_code == 404 and response.json()["error"] == "not_found"
            response = await http.patch(f"{tenant.path}/{webhook_id}", json={"name": "x"})
            assert response.status_code == 404


async def test_bad_list_status_and_cursor_are_400(tenant):
    async with tenant.http() as http:
        assert (await http.get(tenant.path, params={"status": "paused"})).status_code == 400
        assert (await http.get(tenant.path, params={"cursor": "xyz"})).status_code == 400
        assert (await http.get(tenant.path, params={"limit": 0})).status_code == 400


async def test_every_change_notifies_the_delivery_engine_with_the_webhook_id(tenant, platform, kit):
    channel = render("LISTEN {channel}", channel=f"{kit.schema(platform)}_webhooks")
    async with await psycopg.AsyncConnection.connect(platform.dsn, autocommit=True) as conn:
        await conn.execute(channel)
        hooks = tenant.webhooks()
        created = await hooks.create(kit.body())
        await hooks.update(created.id, {"status": "disabled"})
        await hooks.delete(created.id)
        seen: list[str] = []
        async for notice in conn.notifies(timeout=30):
            if notice.payload == created.id:
                seen.append(notice.payload)
            if len(seen) == 3:
                break
    assert seen == [created.id] * 3
