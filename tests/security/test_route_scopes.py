"""Every Core API route requires the scope the spec's rule gives it (core-api.md 5.1, 5.2): `read`
for GET, `write` for POST/PATCH/PUT and state-changing actions, `delete` for DELETE, `manage` for
secret-bearing actions, plus the few exceptions the spec documents. The table is the running
platform's own route declarations, so a new route with the wrong scope fails here. A key with
`issuers.organizations:write` once deleted an organization; each route is also called by a key
holding every scope but the required one, which must get 403 `insufficient_scope`."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from litestar.routes import HTTPRoute

from authpi.contracts.scopes import ALL_SCOPES, CATALOGUE, grants
from authpi.platform.testing.plugin import RunningPlatform
from authpi.platform.testing.tenants import ADMIN, basic, key_ready, part
from authpi.web.guards import required_scopes

RESOURCES = frozenset(scope.rpartition(":")[0] for scope in CATALOGUE)
ACTION_OF_METHOD = {"GET": "read", "POST": "write", "PATCH": "write", "PUT": "write",
                    "DELETE": "delete"}  # fmt: skip
# Path actions that hand out a secret (core-api.md 5.1: "secret-bearing actions need manage").
SECRET_ACTIONS = frozenset({"rotate", "regenerate"})

# The spec's documented exceptions to the rule, by operation id; None = no scope at all.
EXCEPTIONS: dict[str, str | None] = {
    # 3.1, 5.1: "GET /v1/me needs no scope".
    "getCallerIdentity": None,
    # 5.2: `issuers.tokens:read` grants token introspection, a POST that changes nothing.
    "introspectToken": "issuers.tokens:read",
    # 5.2: `issuers.agents:write` grants "add/remove verifiers"; verifiers have no scope of their
    # own, and removing one changes the agent.
    "removeAgentVerifier": "issuers.agents:write",
    # 5.2: `webhooks:manage` grants "plus redelivery and secret regeneration".
    "redeliverWebhookDelivery": "webhooks:manage",
    "redeliverWebhookDeliveries": "webhooks:manage",
    # 5.2: billing has `credits:read` / `credits:write` ("billing, only if implemented") and,
    # like every resource, `credits:delete` for its DELETE routes: usage, its estimate and
    # invoices are reads of it, adding or changing a payment method a write, removing one a
    # delete (it once took `credits:write`).
    "getAccountUsage": "credits:read",
    "getAccountUsageEstimate": "credits:read",
    "listAccountInvoices": "credits:read",
    "createAccountPaymentMethod": "credits:write",
    "updateAccountPaymentMethod": "credits:write",
    "deleteAccountPaymentMethod": "credits:delete",
    "createAccountStripeSetupIntent": "credits:write",
}


class Route(msgspec.Struct, frozen=True):
    method: str
    path: str
    operation_id: str
    scopes: tuple[str, ...]


def core_routes(platform: RunningPlatform) -> list[Route]:
    """The Core API's routes as the running platform declares them, with their scope guards."""
    app = platform.handle.core_app().litestar
    found: list[Route] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/v1/"):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                scopes = tuple(required_scopes(handler.resolve_guards()))
                found.append(Route(method, route.path, str(handler.operation_id), scopes))
    return found


def _segments(path: str) -> Iterator[tuple[str, bool]]:
    """(segment, is a path parameter) after `/v1/accounts/{account_id}`."""
    for segment in path.split("/")[4:]:
        yield segment, segment.startswith("{")


def expected_scope(route: Route) -> str | None:
    """The scope core-api.md 5.1 gives a route: the resource is the path's collections joined
    with dots (as far as the catalogue names them), the action follows the method, and a
    secret-bearing action needs `manage` where the resource has one."""
    if route.operation_id in EXCEPTIONS:
        return EXCEPTIONS[route.operation_id]
    if re.fullmatch(r"/v1/accounts(/\{[^/]+\})?", route.path):
        return f"account:{ACTION_OF_METHOD[route.method]}"
    resource: list[str] = []
    actions: list[str] = []
    for segment, is_param in _segments(route.path):
        if is_param:
            continue
        if not actions and ".".join([*resource, segment]) in RESOURCES:
            resource.append(segment)
        else:
            actions.append(segment)
    name = ".".join(resource)
    assert name in RESOURCES, f"{route.path} names no resource of the scope catalogue"
    action = ACTION_OF_METHOD[route.method]
    if SECRET_ACTIONS.intersection(actions) and f"{name}:manage" in CATALOGUE:
        action = "manage"
    return f"{name}:{action}"


@pytest.fixture(scope="module")
def routes(platform: RunningPlatform) -> list[Route]:
    found = core_routes(platform)
    assert len(found) > 50, "the Core API's route catalogue was not found"
    return found


def test_every_route_requires_the_scope_of_the_spec_rule(routes: list[Route]) -> None:
    wrong = [
        f"{r.method} {r.path} ({r.operation_id}): requires {list(r.scopes)}, "
        f"the rule says {expected_scope(r)}"
        for r in routes
        if list(r.scopes) != ([] if expected_scope(r) is None else [expected_scope(r)])
    ]
    assert wrong == []


def test_every_delete_route_requires_a_delete_scope(routes: list[Route]) -> None:
    deletes = [r for r in routes if r.method == "DELETE"]
    assert deletes
    for r in deletes:
        exception = r.operation_id in EXCEPTIONS
        assert exception or [s.endswith(":delete") for s in r.scopes] == [True], r


def test_every_documented_exception_is_a_route(routes: list[Route]) -> None:
    assert set(EXCEPTIONS) <= {r.operation_id for r in routes}


def without(scope: str) -> list[str]:
    """Every catalogue scope except those granting `scope`."""
    return [s for s in ALL_SCOPES if not grants([s], scope)]


def concrete(path: str, account_id: str) -> str:
    path = path.replace("{account_id:str}", account_id)
    return re.sub(r"\{[^}]+\}", "x_unknown", path)


async def test_a_key_lacking_the_required_scope_is_refused_on_every_route(
    platform: RunningPlatform, routes: list[Route]
) -> None:
    directory = part(platform, "directory")
    required = {r: expected_scope(r) for r in routes}
    needed = sorted({s for s in required.values() if s is not None})
    keys = {
        scope: await directory.create_api_key(
            platform.account_id, f"all-but-{scope}", without(scope), actor=ADMIN
        )
        for scope in needed
    }
    await asyncio.gather(*(key_ready(platform, k.key_id, k.secret) for k in keys.values()))
    not_refused: list[str] = []
    async with httpx.AsyncClient(base_url=platform.api_url, timeout=30) as http:
        for r, scope in required.items():
            if scope is None:
                continue
            key = keys[scope]
            body = None if r.method in ("GET", "DELETE") else {}
            answer = await http.request(
                r.method, concrete(r.path, platform.account_id), json=body,
                headers=basic(key.key_id, key.secret),
            )  # fmt: skip
            error = answer.json().get("error") if answer.content else None
            if answer.status_code != 403 or error != "insufficient_scope":
                not_refused.append(f"{r.method} {r.path}: {answer.status_code} {error}")
    assert not_refused == []


@pytest.mark.parametrize("kind", ["organization", "member", "group"])
async def test_a_write_scope_does_not_delete(platform: RunningPlatform, kind: str) -> None:
    """The probe's case: keys holding only `:write` deleted an organization, a membership and a
    group (204)."""
    account = f"{platform.api_url}/v1/accounts/{platform.account_id}"
    admin = (platform.api_key_id, platform.api_key_secret)
    async with httpx.AsyncClient(base_url=account, auth=admin, timeout=30) as strong:
        issuer = (await strong.post("/issuers", json={"name": "del"})).json()["data"]["id"]
        orgs = f"/issuers/{issuer}/organizations"
        org = (await strong.post(orgs, json={"name": "Org"})).json()["data"]["id"]
        email = {"username_type": "email", "username": f"m-{org[-8:]}@example.com"}
        user = (await strong.post(f"/issuers/{issuer}/users", json=email)).json()["data"]["id"]
        added = await strong.post(f"{orgs}/{org}/members", json={"member_id": user})
        group = await strong.post(f"{orgs}/{org}/groups", json={"name": "g"})
        assert added.status_code == 201 and group.status_code == 201
        targets = {
            "organization": (f"{orgs}/{org}", "issuers.organizations:write"),
            "member": (f"{orgs}/{org}/members/{user}", "issuers.organizations.members:write"),
            "group": (f"{orgs}/{org}/groups/{group.json()['data']['id']}",
                      "issuers.organizations.groups:write"),
        }  # fmt: skip
        path, scope = targets[kind]
        key = await part(platform, "directory").create_api_key(
            platform.account_id, "writer", [scope], actor=ADMIN
        )
        await key_ready(platform, key.key_id, key.secret)
        answer = await strong.delete(path, auth=(key.key_id, key.secret))
        assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"
        assert (await strong.get(path)).status_code == 200


async def test_a_credits_write_key_does_not_remove_a_payment_method(
    platform: RunningPlatform,
) -> None:
    """5.2: `credits:delete` grants billing's DELETE route; removing a payment method once took
    `credits:write`."""
    account = f"{platform.api_url}/v1/accounts/{platform.account_id}"
    admin = (platform.api_key_id, platform.api_key_secret)
    method = {"network": "eip155:8453", "asset": "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"}
    directory = part(platform, "directory")
    writer = await directory.create_api_key(
        platform.account_id, "billing-writer", ["credits:write"], actor=ADMIN
    )
    remover = await directory.create_api_key(
        platform.account_id, "billing-remover", ["credits:delete"], actor=ADMIN
    )
    await key_ready(platform, writer.key_id, writer.secret)
    await key_ready(platform, remover.key_id, remover.secret)
    async with httpx.AsyncClient(base_url=account, auth=admin, timeout=30) as http:
        created = await http.post("/payment-methods", json=method)
        path = f"/payment-methods/{created.json()['data']['id']}"
        answer = await http.delete(path, auth=(writer.key_id, writer.secret))
        assert answer.status_code == 403 and answer.json()["error"] == "insufficient_scope"
        assert (await http.patch(path, json={"enabled": True})).status_code == 200  # still there
        assert (await http.delete(path, auth=(remover.key_id, remover.secret))).status_code == 204
