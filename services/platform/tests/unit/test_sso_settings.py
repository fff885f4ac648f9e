"""AUTHPI_SSO_ALLOW_INSECURE: organizations' upstream IdPs must be https unless a development
deployment (`make run` sets it) allows plain http."""

from __future__ import annotations

from authpi.config import from_env


def test_upstream_idps_must_be_https_unless_development_allows_http():
    assert from_env({}).sso_allow_insecure is False
    assert from_env({"AUTHPI_SSO_ALLOW_INSECURE": "0"}).sso_allow_insecure is False
    assert from_env({"AUTHPI_SSO_ALLOW_INSECURE": "1"}).sso_allow_insecure is True
