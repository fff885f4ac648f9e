"""Direct routes (authpi.web.direct): POST /{segment}/{name} is answered before litestar's router,
behind the guard; every other request, and a first segment litestar routes statically, goes to
litestar as before; a direct name without its documented litestar route is refused."""

from typing import Any

import httpx
import pytest
from litestar import Litestar, get, post
from litestar.params import FromPath

from authpi.web.direct import direct_routes, routed_segments
from authpi.web.oauth import RawResponse, json_response


@post("/{tenant:str}/token", status_code=200)
async def routed_token(tenant: FromPath[str]) -> dict[str, str]:
    return {"by": "litestar", "tenant": tenant}


@get("/static/{rest:str}")
async def static(rest: FromPath[str]) -> dict[str, str]:
    return {"by": "static", "rest": rest}


async def direct_token(scope: Any, receive: Any, send: Any, tenant: str) -> None:
    await json_response({"by": "direct", "tenant": tenant})(scope, receive, send)


def app(guard: Any = None) -> Any:
    routed = Litestar(route_handlers=[routed_token, static])
    names = {"token": direct_token}
    return direct_routes(routed, names, guard, routed_segments(routed, names))


async def call(asgi: Any, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.request(method, path)


async def test_a_direct_path_is_answered_before_the_router():
    resp = await call(app(), "POST", "/t1/token")
    assert resp.status_code == 200 and resp.json() == {"by": "direct", "tenant": "t1"}


@pytest.mark.parametrize(
    ("method", "path", "status", "by"),
    [
        ("POST", "/t1/token/", 200, "litestar"),  # a trailing slash: the router's
        ("GET", "/t1/token", 405, None),  # another method
        ("POST", "/t1/other", 404, None),  # not a direct name
        ("POST", "/static/token", 405, None),  # litestar routes /static/… statically
        ("POST", "//token", 404, None),  # no first segment
    ],
)
async def test_every_other_request_goes_to_litestar(method, path, status, by):
    resp = await call(app(), method, path)
    assert resp.status_code == status
    if by is not None:
        assert resp.json()["by"] == by


async def test_the_guard_refuses_before_the_route():
    def guard(scope: Any, name: str) -> RawResponse | None:
        return RawResponse(429, b'{"error":"slow_down"}', {}) if name == "token" else None

    resp = await call(app(guard), "POST", "/t1/token")
    assert resp.status_code == 429 and resp.json() == {"error": "slow_down"}


def test_a_direct_name_needs_its_documented_litestar_route():
    routed = Litestar(route_handlers=[static])
    with pytest.raises(RuntimeError, match="token"):
        routed_segments(routed, {"token": direct_token})
    routed = Litestar(route_handlers=[routed_token, static])
    assert "static" in routed_segments(routed, ["token"])
