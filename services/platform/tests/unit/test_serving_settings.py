"""The distributed topology's settings: AUTHPI_SERVICE_URLS and AUTHPI_INTERNAL_URL, what they
accept and refuse, and what `authpi serve` refuses to start without."""

from __future__ import annotations

from pathlib import Path

import pytest

from authpi.config import Settings, from_env
from authpi.platform.modules import serving_modules, serving_problem

ALL = "directory=http://a:1,token=http://b:2,agent=http://c:3,billing=http://d:4,webhook=http://e:5"


def test_service_urls_are_name_url_pairs_without_trailing_slashes():
    settings = from_env({"AUTHPI_SERVICE_URLS": "directory=http://10.0.0.1:9101/, token=https://t"})
    assert settings.service_urls == (
        ("directory", "http://10.0.0.1:9101"),
        ("token", "https://t"),
    )


@pytest.mark.parametrize(
    "raw", ["directory", "=http://a:1", "directory=ftp://a", "directory=http://a:1/v1", "x=http://"]
)
def test_service_urls_refuse_what_is_not_service_equals_base_url(raw):
    with pytest.raises(ValueError, match="AUTHPI_SERVICE_URLS"):
        from_env({"AUTHPI_SERVICE_URLS": raw})


def test_internal_url_is_a_base_url():
    assert from_env({"AUTHPI_INTERNAL_URL": "http://127.0.0.1:9101/"}).internal_url == (
        "http://127.0.0.1:9101"
    )
    with pytest.raises(ValueError, match="AUTHPI_INTERNAL_URL"):
        from_env({"AUTHPI_INTERNAL_URL": "127.0.0.1:9101"})


def settings(**fields) -> Settings:
    return Settings(data_dir=Path("/nonexistent"), **fields)


def test_a_service_needs_its_internal_url_and_the_gateway_every_service_url():
    assert serving_problem(settings(), None) is None  # authpi up
    assert "AUTHPI_INTERNAL_URL" in (serving_problem(settings(), "directory") or "")
    assert serving_problem(settings(internal_url="http://127.0.0.1:9101"), "directory") is None
    some = from_env({"AUTHPI_SERVICE_URLS": "directory=http://a:1"})
    assert "no URL for: agent, billing, token, webhook" in (serving_problem(some, "gateway") or "")
    extra = from_env({"AUTHPI_SERVICE_URLS": f"{ALL},mailer=http://f:6"})
    assert "no such service: mailer" in (serving_problem(extra, "gateway") or "")
    assert serving_problem(from_env({"AUTHPI_SERVICE_URLS": ALL}), "gateway") is None


def test_each_process_runs_its_service_alone_the_token_one_with_keyinfo():
    assert [m.name for m in serving_modules("directory")] == ["directory"]
    assert [m.name for m in serving_modules("gateway")] == ["gateway"]
    token, keyinfo = serving_modules("token")
    assert token.name == "token" and keyinfo.name == "gateway" and not keyinfo.owns_store
    assert len(serving_modules(None)) == 6 and all(m.owns_store for m in serving_modules(None))
