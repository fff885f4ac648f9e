"""The development configuration (`make run`: AUTHPI_WEBHOOKS_ALLOW_INSECURE and _PRIVATE on)
accepts plain-http loopback receivers and says so in its start-up log; the production defaults
(the session's platform) refuse them. The cloud metadata address stays refused in both."""

from __future__ import annotations

import httpx
from structlog.testing import capture_logs

from authpi.platform.testing.plugin import running_platform
from authpi.platform.testing.tenants import basic


async def test_development_allows_loopback_http_and_warns_at_start(infra, tmp_path):
    with capture_logs() as logs:
        async with running_platform(
            infra, tmp_path, webhooks_allow_insecure=True, webhooks_allow_private=True
        ) as dev:
            warnings = [e for e in logs if e["event"] == "webhooks.targets_unrestricted"]
            assert len(warnings) == 1 and warnings[0]["log_level"] == "warning"
            assert warnings[0]["allow_insecure"] and warnings[0]["allow_private"]
            path = f"/v1/accounts/{dev.account_id}/webhooks"
            body = {"name": "local", "auth": {"type": "signature"}, "events": ["user.created"]}
            async with httpx.AsyncClient(
                base_url=dev.api_url, headers=basic(dev.api_key_id, dev.api_key_secret)
            ) as http:
                local = await http.post(path, json={**body, "url": "http://127.0.0.1:9/hook"})
                assert local.status_code == 201, local.text
                assert local.json()["data"]["url"] == "http://127.0.0.1:9/hook"
                named = await http.post(path, json={**body, "url": "http://localhost:9/hook"})
                assert named.status_code == 201, named.text
                meta = await http.post(path, json={**body, "url": "http://169.254.169.254/"})
                assert meta.status_code == 400
                assert meta.json()["fields"][0]["code"] == "forbidden_host"


async def test_production_defaults_refuse_loopback_and_plain_http(tenant, platform, kit):
    assert not platform.handle.settings.webhooks_allow_insecure
    assert not platform.handle.settings.webhooks_allow_private
    async with tenant.http() as http:
        for url, code in (
            ("http://127.0.0.1:9/hook", "insecure_url"),
            ("https://127.0.0.1:9/hook", "forbidden_host"),
            ("https://localhost/hook", "forbidden_host"),
            ("https://[::1]/hook", "forbidden_host"),
            ("https://10.0.0.1/hook", "forbidden_host"),
        ):
            response = await http.post(tenant.path, json=kit.body(url=url))
            assert response.status_code == 400, url
            assert response.json()["fields"][0] == {
                "field": "url", "code": code, "message": response.json()["error_description"],
            }  # fmt: skip
