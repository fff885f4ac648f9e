"""Behind an ingress or a port mapping the public ports bind their listen URLs
(AUTHPI_API_LISTEN_URL, AUTHPI_IDP_LISTEN_URL) while everything a client sees (issuer URLs,
discovery) keeps the public URLs; and the development mail sink never runs on a port that
listens beyond loopback, whatever the public URL says."""

from __future__ import annotations

import httpx
import pytest

from authpi.config import Settings, from_env
from authpi.platform.host import Platform
from authpi.platform.testing.plugin import running_platform
from authpi.web.mail import NoMailer


def test_listen_urls_are_base_urls_and_optional():
    settings = from_env(
        {
            "AUTHPI_API_URL": "https://api.example.test",
            "AUTHPI_API_LISTEN_URL": "http://0.0.0.0:8000/",
            "AUTHPI_IDP_LISTEN_URL": "http://0.0.0.0:8001",
        }
    )
    assert settings.api_listen_url == "http://0.0.0.0:8000"
    assert settings.idp_listen_url == "http://0.0.0.0:8001"
    assert from_env({}).api_listen_url is None and from_env({}).idp_listen_url is None
    with pytest.raises(ValueError, match="AUTHPI_IDP_LISTEN_URL"):
        from_env({"AUTHPI_IDP_LISTEN_URL": "0.0.0.0:8001"})


def _port(platform, attr: str) -> int:
    return platform.handle._sockets[attr].getsockname()[1]


async def test_public_ports_bind_their_listen_urls_and_keep_the_public_ones(infra, tmp_path):
    async with running_platform(
        infra,
        tmp_path,
        api_url="https://api.example.test",
        idp_url="https://idp.example.test",
        api_listen_url="http://127.0.0.1:0",
        idp_listen_url="http://127.0.0.1:0",
    ) as running:
        assert running.api_url == "https://api.example.test"
        assert running.idp_url == "https://idp.example.test"
        api = f"http://127.0.0.1:{_port(running, 'api_url')}"
        idp = f"http://127.0.0.1:{_port(running, 'idp_url')}"
        async with httpx.AsyncClient(auth=(running.api_key_id, running.api_key_secret)) as http:
            created = await http.post(
                f"{api}/v1/accounts/{running.account_id}/issuers",
                json={"name": "Behind an ingress"},
            )
            assert created.status_code == 201, created.text
            issuer_id = created.json()["data"]["id"]
            discovery = await http.get(f"{idp}/{issuer_id}/.well-known/openid-configuration")
            assert discovery.status_code == 200
            assert discovery.json()["issuer"] == f"https://idp.example.test/{issuer_id}"
            assert discovery.json()["token_endpoint"].startswith("https://idp.example.test/")


async def test_no_mail_sink_when_the_core_api_listens_beyond_loopback(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path, api_listen_url="http://0.0.0.0:8000"))
    mailer = await platform.open_mailer(platform.settings)
    assert isinstance(mailer, NoMailer) and platform.mail_sink is None
