"""The Core API machinery every route relies on, exercised through test-only routes mounted by
the platform's own gateway (no public route of this kind exists yet): JSON bodies, scopes, the
account path check, envelopes, pagination, ETag / If-Match and Idempotency-Key."""

from __future__ import annotations

import asyncio
import base64
from typing import Annotated, Any

import httpx
import msgspec
import pytest
from authpi_admin import AuthPIAdmin
from authpi_admin.errors import PreconditionFailedError, ValidationError
from litestar import Response, Router, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from psycopg import sql

from authpi.contracts.base import Actor, Meta
from authpi.directory.domain import account, api_key
from authpi.directory.domain.commands.account import CreateAccount
from authpi.directory.handlers.accounts import Directory
from authpi.directory.handlers.api_keys import StatusChange
from authpi.platform.testing.tenants import basic
from authpi.web.core import provide
from authpi.web.envelopes import One, Page, one
from authpi.web.guards import require_scope
from authpi.web.metadata import check_metadata
from authpi.web.pagination import InjectedPage, SortKey, paginate
from authpi.web.params import IfMatch
from authpi.web.principal import InjectedPrincipal

ADMIN = Actor(type="system")


class CreateKey(msgspec.Struct, frozen=True, kw_only=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    scopes: list[str] = []
    metadata: dict[str, Any] = {}


class NewKey(msgspec.Struct, frozen=True):
    id: str
    secret_plain: str


class StatusBody(msgspec.Struct, frozen=True, kw_only=True):
    status_reason: str | None = None
    status_by: str | None = None


class KeyStatus(msgspec.Struct, frozen=True):
    id: str
    status: str


class KeyItem(msgspec.Struct, frozen=True):
    id: str
    name: str
    created_at: int


class KeyListing:
    """The test list's read side: newest first by (created_at, id), after a cursor."""

    def __init__(self, pool, schema: str) -> None:
        self.pool = pool
        self.query = sql.SQL(
            "SELECT id, name, created_at FROM {}.api_keys_view WHERE account_id = %(account)s"
            " AND (%(after)s::bigint IS NULL OR (created_at, id) < (%(after)s, %(after_id)s))"
            " ORDER BY created_at DESC, id DESC LIMIT %(limit)s"
        ).format(sql.Identifier(schema))

    async def page(self, account_id: str, after: SortKey | None, limit: int) -> list[KeyItem]:
        after_at, after_id = after or (None, None)
        params = {"account": account_id, "after": after_at, "after_id": after_id, "limit": limit}
        async with self.pool.connection() as conn:
            cur = await conn.execute(self.query, params)
            return [KeyItem(*row) for row in await cur.fetchall()]


@post(
    "/v1/accounts/{account_id:str}/test-keys",
    operation_id="testCreateKey",
    guards=[require_scope("api-keys:write")],
)
async def create_key(
    account_id: FromPath[str],
    data: JSONBody[CreateKey],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
) -> Response[One[NewKey]]:
    check_metadata(data.metadata)
    key = await directory.create_api_key(
        account_id, data.name, data.scopes, actor=principal.actor()
    )
    state, _ = await directory.store.read_state(key.key_id, api_key)
    return one(NewKey(key.key_id, key.secret), etag=state.etag, status=201)


@post(
    "/v1/accounts/{account_id:str}/test-keys/{key_id:str}/block",
    operation_id="testBlockKey",
    guards=[require_scope("api-keys:write")],
)
async def block_key(
    account_id: FromPath[str],
    key_id: FromPath[str],
    principal: InjectedPrincipal,
    directory: NamedDependency[Directory],
    if_match: IfMatch = None,
    data: JSONBody[StatusBody] = StatusBody(),
) -> Response[One[KeyStatus]]:
    change = StatusChange(
        status_reason=data.status_reason, status_by=data.status_by, if_match=if_match
    )
    state = await directory.block_api_key(
        account_id, key_id, actor=principal.actor(), change=change
    )
    return one(KeyStatus(state.id, state.status), etag=state.etag)


@get(
    "/v1/accounts/{account_id:str}/test-keys",
    operation_id="testListKeys",
    guards=[require_scope("api-keys:read")],
)
async def list_keys(
    account_id: FromPath[str], page: InjectedPage, listing: NamedDependency[KeyListing]
) -> Page[KeyItem]:
    rows = await listing.page(account_id, page.after("test-keys"), page.fetch_limit)
    return paginate(rows, page, "test-keys", lambda k: (k.created_at, k.id))


def machinery_router(directory: Directory, pool, schema: str) -> Router:
    """Mounted the way a service mounts its routes: its objects as named dependencies."""
    return Router(
        "/",
        route_handlers=[create_key, block_key, list_keys],
        dependencies={
            "directory": provide(directory),
            "listing": provide(KeyListing(pool, schema)),
        },
    )


@pytest.fixture
async def api(platform, directory, gateway, pool, serve):
    """A Core API app with the test routes, built by the platform's gateway, on a real port."""
    router = machinery_router(directory, pool, f"{platform.namespace}_directory")
    async with serve(gateway.core_app([router], platform.handle.ready)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            http.headers.update(basic(platform.api_key_id, platform.api_key_secret))
            yield http


@pytest.fixture
async def other_account(platform, directory) -> str:
    """A second account, written through the directory's event store like the first one."""
    account_id = platform.handle.ids.new("acc")
    cmd = CreateAccount(
        account_id=account_id,
        org_id="org_" + account_id.removeprefix("acc_"),
        name="Other",
        owner_user_id=None,
        now=platform.handle.clock.now_ms(),
    )
    meta = Meta(account_id=account_id, trigger="system")
    await directory.store.execute(account_id, account, cmd, meta, directory.projections)
    return account_id


def keys_path(platform, account_id: str | None = None) -> str:
    return f"/v1/accounts/{account_id or platform.account_id}/test-keys"


async def key_with(platform, directory, scopes: list[str], account_id: str | None = None):
    key = await directory.create_api_key(
        account_id or platform.account_id, "scoped", scopes, actor=ADMIN
    )
    return basic(key.key_id, key.secret)


async def count_named(pool, platform, name: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}.api_keys_view WHERE name = %s").format(
        sql.Identifier(f"{platform.namespace}_directory")
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, [name])
        return (await cur.fetchone())[0]


# JSON bodies (core-api.md 1.3)


async def test_created_resource_comes_wrapped_with_an_etag(api, platform):
    resp = await api.post(keys_path(platform), json={"name": "wrapped", "unknown": [1, 2]})
    assert resp.status_code == 201, resp.text
    assert list(resp.json()) == ["data"]
    assert resp.json()["data"]["id"].startswith("key_")
    assert resp.headers["etag"].startswith('"') and resp.headers["etag"][1:-1].isdigit()


async def test_malformed_json_is_400(api, platform):
    resp = await api.post(
        keys_path(platform), content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request" and resp.json()["retryable"] is False


async def test_a_body_that_is_not_an_object_is_400(api, platform):
    resp = await api.post(keys_path(platform), json=["name"])
    assert resp.status_code == 400


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({}, "name", "required"),
        ({"name": 5}, "name", "invalid_type"),
        ({"name": ""}, "name", "invalid_value"),
        ({"name": "x", "scopes": ["ok", 7]}, "scopes.1", "invalid_type"),
    ],
)
async def test_invalid_fields_are_422_with_dotted_paths(api, platform, body, field, code):
    resp = await api.post(keys_path(platform), json=body)
    assert resp.status_code == 422, resp.text
    [problem] = resp.json()["fields"]
    assert (problem["field"], problem["code"]) == (field, code)
    assert resp.json()["error"] == "invalid_request"


async def test_sdk_sees_field_problems_as_validation_error(platform, api):
    key = (platform.api_key_id, platform.api_key_secret)
    async with AuthPIAdmin(api_key=key, base_url=str(api.base_url), retries=False) as admin:
        with pytest.raises(ValidationError) as caught:
            await admin.http.request("POST", keys_path(platform), body={"name": 5})
    assert caught.value.status_code == 422
    assert caught.value.fields[0]["field"] == "name"


async def test_metadata_over_the_limits_is_422(api, platform):
    metadata = {f"k{i}": i for i in range(51)}
    resp = await api.post(keys_path(platform), json={"name": "meta", "metadata": metadata})
    assert resp.status_code == 422
    assert resp.json()["fields"][0]["field"] == "metadata"


async def test_non_json_body_is_415(api, platform):
    resp = await api.post(
        keys_path(platform), content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 415
    assert resp.json()["error"] == "invalid_content_type"


async def test_missing_required_body_is_400(api, platform):
    resp = await api.post(keys_path(platform))
    assert resp.status_code == 400
    assert resp.json()["fields"][0]["field"] == "body"


async def test_body_over_one_mebibyte_is_413(api, platform):
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    for extra in ({}, {"Idempotency-Key": "big-body"}):
        resp = await api.post(
            keys_path(platform), content=big, headers={"Content-Type": "application/json", **extra}
        )
        assert resp.status_code == 413
        assert resp.json()["error"] == "payload_too_large"


async def test_bodiless_action_post_without_content_type_works(api, platform, directory):
    key = await directory.create_api_key(platform.account_id, "bodiless", [], actor=ADMIN)
    resp = await api.post(f"{keys_path(platform)}/{key.key_id}/block")
    assert "content-type" not in resp.request.headers
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"data": {"id": key.key_id, "status": "blocked"}}


# Scopes and the account in the path (core-api.md 1.2, 5)


async def test_missing_scope_is_403_naming_it(api, platform, directory):
    reader = await key_with(platform, directory, ["api-keys:read"])
    listed = await api.get(keys_path(platform), headers=reader)
    assert listed.status_code == 200
    resp = await api.post(keys_path(platform), json={"name": "nope"}, headers=reader)
    assert resp.status_code == 403
    assert resp.json()["error"] == "insufficient_scope"
    assert "api-keys:write" in resp.json()["error_description"]


async def test_manage_implies_write_and_empty_scopes_deny(api, platform, directory):
    manager = await key_with(platform, directory, ["api-keys:manage"])
    assert (await api.post(keys_path(platform), json={"name": "m"}, headers=manager)).is_success
    nobody = await key_with(platform, directory, [])
    assert (await api.get(keys_path(platform), headers=nobody)).status_code == 403


async def test_another_account_in_the_path_is_403(api, platform, other_account):
    resp = await api.get(keys_path(platform, other_account))
    assert resp.status_code == 403
    assert resp.json()["error"] == "access_denied"


async def test_an_unknown_account_in_the_path_is_404(api, platform):
    resp = await api.get(keys_path(platform, "acc_" + "z" * 25))
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found"


async def test_credentials_are_checked_before_the_account(api, platform):
    resp = await api.get(keys_path(platform, "acc_" + "z" * 25), headers={"Authorization": ""})
    assert resp.status_code == 401


# Pagination (core-api.md 2.2)


async def test_pages_walk_newest_first_to_the_end(api, platform, directory, other_account):
    created = [
        (await directory.create_api_key(other_account, f"k{i}", [], actor=ADMIN)).key_id
        for i in range(3)
    ]
    auth = await key_with(platform, directory, ["api-keys:read"], other_account)
    path = keys_path(platform, other_account)
    first = (await api.get(path, params={"limit": 2}, headers=auth)).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    params = {"limit": 2, "cursor": first["next_cursor"]}
    second = (await api.get(path, params=params, headers=auth)).json()
    assert second["has_more"] is False and second["next_cursor"] is None
    ids = [k["id"] for k in first["data"] + second["data"]]
    assert set(created) <= set(ids) and len(ids) == len(set(ids)) == 4
    stamps = [k["created_at"] for k in first["data"] + second["data"]]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b'["issuers", "x"]').decode()}, "cursor"),
    ],
)
async def test_bad_limit_or_cursor_is_400_with_fields(api, platform, params, field):
    resp = await api.get(keys_path(platform), params=params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["fields"][0]["field"] == field


async def test_default_page_is_the_list_envelope(api, platform):
    body = (await api.get(keys_path(platform))).json()
    assert set(body) == {"data", "has_more", "next_cursor"}


# ETag and If-Match (core-api.md 2.3)


async def test_if_match_mismatch_is_412_with_the_current_etag(api, platform, directory):
    key = await directory.create_api_key(platform.account_id, "etag", [], actor=ADMIN)
    path = f"{keys_path(platform)}/{key.key_id}/block"
    stale = await api.post(path, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    body = stale.json()
    assert body["error"] == "precondition_failed"
    assert body["current_etag"] == body["currentETag"] == stale.headers["etag"]
    for weak in (f"W/{body['current_etag']}",):
        assert (await api.post(path, headers={"If-Match": weak})).status_code == 412
    fresh = await api.post(path, headers={"If-Match": f'"0", {body["current_etag"]}'})
    assert fresh.status_code == 200
    assert fresh.headers["etag"] != body["current_etag"]
    again = await api.post(path, headers={"If-Match": "*"})
    assert again.status_code == 200 and again.headers["etag"] == fresh.headers["etag"]


async def test_sdk_reads_current_etag_from_412(platform, api, directory):
    key = await directory.create_api_key(platform.account_id, "sdk etag", [], actor=ADMIN)
    path = f"{keys_path(platform)}/{key.key_id}/block"
    creds = (platform.api_key_id, platform.api_key_secret)
    async with AuthPIAdmin(api_key=creds, base_url=str(api.base_url), retries=False) as admin:
        with pytest.raises(PreconditionFailedError) as caught:
            await admin.http.request("POST", path, headers={"if-match": '"1"'})
        done = await admin.http.request(
            "POST", path, headers={"if-match": caught.value.current_etag}
        )
    assert done.etag is not None and done.data["data"]["status"] == "blocked"


async def test_if_match_on_a_missing_resource_is_404(api, platform):
    path = f"{keys_path(platform)}/key_{'0' * 32}/block"
    resp = await api.post(path, headers={"If-Match": '"1"'})
    assert resp.status_code == 404


# Idempotency-Key (core-api.md 2.4)


async def test_replay_is_byte_identical_and_marked(api, platform, pool):
    headers = {"Idempotency-Key": "replay-1"}
    first = await api.post(keys_path(platform), json={"name": "idem-replay"}, headers=headers)
    again = await api.post(keys_path(platform), json={"name": "idem-replay"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["etag"] == first.headers["etag"]
    assert await count_named(pool, platform, "idem-replay") == 1


async def test_same_key_with_another_body_or_path_is_422(api, platform):
    headers = {"Idempotency-Key": "reuse-1"}
    assert (await api.post(keys_path(platform), json={"name": "a"}, headers=headers)).is_success
    other_body = await api.post(keys_path(platform), json={"name": "b"}, headers=headers)
    assert other_body.status_code == 422
    assert "different request body" in other_body.json()["error_description"]
    other_path = await api.post(f"{keys_path(platform)}/key_x/block", headers=headers)
    assert other_path.status_code == 422


async def test_same_body_with_other_key_order_replays(api, platform):
    headers = {"Idempotency-Key": "order-1", "Content-Type": "application/json"}
    body_a = b'{"name": "order", "scopes": []}'
    body_b = b'{"scopes": [], "name": "order"}'
    first = await api.post(keys_path(platform), content=body_a, headers=headers)
    second = await api.post(keys_path(platform), content=body_b, headers=headers)
    assert second.headers.get("idempotent-replayed") == "true"
    assert second.content == first.content


async def test_twenty_concurrent_identical_posts_execute_once(api, platform, pool):
    headers = {"Idempotency-Key": "concurrent-1"}
    responses = await asyncio.gather(
        *(
            api.post(keys_path(platform), json={"name": "idem-concurrent"}, headers=headers)
            for _ in range(20)
        )
    )
    assert await count_named(pool, platform, "idem-concurrent") == 1
    statuses = {r.status_code for r in responses}
    assert statuses <= {201, 409} and 201 in statuses
    assert len({r.content for r in responses if r.status_code == 201}) == 1
    for busy in (r for r in responses if r.status_code == 409):
        assert busy.json()["retryable"] is True and busy.json()["retry_after"] == 1
        assert busy.headers["retry-after"] == "1"


async def test_replay_still_checks_scopes(api, platform, directory):
    headers = {"Idempotency-Key": "scoped-replay"}
    first = await api.post(keys_path(platform), json={"name": "scoped"}, headers=headers)
    assert first.status_code == 201
    reader = await key_with(platform, directory, ["api-keys:read"])
    resp = await api.post(
        keys_path(platform), json={"name": "scoped"}, headers={**headers, **reader}
    )
    assert resp.status_code == 403
    assert "idempotent-replayed" not in resp.headers


async def test_failed_request_releases_its_key(api, platform):
    headers = {"Idempotency-Key": "retry-after-fix"}
    bad = await api.post(keys_path(platform), json={"name": ""}, headers=headers)
    assert bad.status_code == 422
    good = await api.post(keys_path(platform), json={"name": "fixed"}, headers=headers)
    assert good.status_code == 201 and "idempotent-replayed" not in good.headers


async def test_keys_are_per_account(api, platform, directory, other_account):
    headers = {"Idempotency-Key": "per-account"}
    mine = await api.post(keys_path(platform), json={"name": "per"}, headers=headers)
    theirs_auth = await key_with(platform, directory, ["api-keys:write"], other_account)
    theirs = await api.post(
        keys_path(platform, other_account),
        json={"name": "per"},
        headers={**headers, **theirs_auth},
    )
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["data"]["id"] != mine.json()["data"]["id"]


@pytest.mark.parametrize("key", ["", "k" * 257])
async def test_idempotency_key_must_be_1_to_256_characters(api, platform, key):
    resp = await api.post(
        keys_path(platform), json={"name": "len"}, headers={"Idempotency-Key": key}
    )
    assert resp.status_code == 400


async def test_stored_replay_does_not_hold_the_secret_in_clear(api, platform, pool):
    headers = {"Idempotency-Key": "sealed-1"}
    resp = await api.post(keys_path(platform), json={"name": "sealed"}, headers=headers)
    secret = resp.json()["data"]["secret_plain"]
    query = sql.SQL("SELECT body FROM {}.idempotency_keys WHERE key = %s").format(
        sql.Identifier(f"{platform.namespace}_gateway")
    )
    async with pool.connection() as conn:
        cur = await conn.execute(query, ["sealed-1"])
        (stored,) = await cur.fetchone()
    assert stored and secret not in stored


# The contract (core-api.md 1.1)


async def test_openapi_json_is_served_without_credentials(platform):
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        resp = await http.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    doc = resp.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["paths"]["/v1/me"]["get"]["operationId"] == "getCallerIdentity"


async def test_test_routes_document_their_request_bodies(api):
    doc = (await api.get("/openapi.json")).json()
    body = doc["paths"]["/v1/accounts/{account_id}/test-keys"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/CreateKey")
