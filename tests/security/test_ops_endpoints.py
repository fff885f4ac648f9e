"""Operations endpoints are not public (DESIGN.md 7), and the OpenAPI documents are built once.

`/metrics` (request counts by status: a map of the traffic) and `/readyz` (which dependencies
answer) were served on both public ports, to anyone. They are now served only on the operations
port (`AUTHPI_OPS_URL`, loopback by default); `/healthz` (liveness) stays public. The generated
`/openapi.json` was rebuilt on every request: now once, then served from memory."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx
import pytest


@pytest.mark.parametrize("port", ["api_url", "idp_url"])
@pytest.mark.parametrize("path", ["/metrics", "/readyz"])
async def test_ops_endpoints_are_not_on_the_public_ports(platform, port, path):
    async with httpx.AsyncClient(base_url=getattr(platform, port)) as http:
        resp = await http.get(path)
        assert resp.status_code == 404, resp.text
        assert "authpi_http_requests_total" not in resp.text
        assert (await http.get("/healthz")).status_code == 200


async def test_the_ops_port_serves_readiness_and_every_ports_metrics(platform):
    assert ipaddress.ip_address(urlsplit(platform.ops_url).hostname).is_loopback
    async with httpx.AsyncClient() as http:
        await http.get(f"{platform.api_url}/healthz")
        await http.get(f"{platform.idp_url}/healthz")
        ready = await http.get(f"{platform.ops_url}/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        metrics = (await http.get(f"{platform.ops_url}/metrics")).text
    assert 'authpi_http_requests_total{method="GET",port="core",status="200"}' in metrics
    assert 'authpi_http_requests_total{method="GET",port="idp",status="200"}' in metrics


@pytest.mark.parametrize("port", [0, 1])
async def test_openapi_documents_are_built_once(platform, port, monkeypatch):
    served = platform.handle.servers[port].config.app
    app = getattr(served, "__wrapped__", served).litestar  # behind the trusted-proxy layer
    base = (platform.api_url, platform.idp_url)[port]
    schema = app.openapi_schema
    built = []
    to_schema = schema.to_schema

    def counting() -> dict:
        built.append(1)
        return to_schema()

    monkeypatch.setattr(schema, "to_schema", counting)
    async with httpx.AsyncClient(base_url=base) as http:
        bodies = [(await http.get("/openapi.json")).content for _ in range(3)]
        # litestar's own schema route serves the same document, error responses included.
        bodies.append((await http.get("/openapi/openapi.json")).content)
    assert len(set(bodies)) == 1 and bodies[0].startswith(b"{")
    assert (b'"ApiError"', b'"OAuthError"')[port] in bodies[0]  # the port's error schema
    assert len(built) <= 1
