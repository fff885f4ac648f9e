"""Webhook URL rules and the SSRF guard (platform.md 7.1): https only unless insecure URLs are
allowed, no credentials, canonical hosts only, and no loopback, private, link-local or metadata
target unless private targets are allowed (metadata never). Hostile forms included: userinfo
tricks, IPv6 loopback and embedded IPv4, the cloud metadata address, decimal/hex/octal/short
IPv4, Unicode look-alikes, overlong URLs."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import pytest

from authpi.webhook.domain.urls import (
    ForbiddenAddress,
    UrlRefused,
    check_target_address,
    check_url,
    target_refusal,
)


@dataclass(frozen=True)
class Policy:
    webhooks_allow_insecure: bool = False
    webhooks_allow_private: bool = False


PRODUCTION = Policy()
DEVELOPMENT = Policy(webhooks_allow_insecure=True, webhooks_allow_private=True)


def refused(url: str, policy: Policy = PRODUCTION) -> str:
    with pytest.raises(UrlRefused) as caught:
        check_url(url, policy)
    return caught.value.code


@pytest.mark.parametrize(("url", "normal"), [
    ("https://hooks.example.com/authpi", "https://hooks.example.com/authpi"),
    ("HTTPS://Hooks.Example.COM:8443/a?b=c", "https://hooks.example.com:8443/a?b=c"),
    ("https://hooks.example.com", "https://hooks.example.com/"),
    ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
    ("https://8.8.8.8/hook", "https://8.8.8.8/hook"),
    ("https://[2606:4700:4700::1111]/hook", "https://[2606:4700:4700::1111]/hook"),
])  # fmt: skip
def test_public_https_urls_are_kept_in_normal_form(url, normal):
    assert check_url(url, PRODUCTION) == normal


def test_plain_http_only_when_insecure_urls_are_allowed():
    assert refused("http://hooks.example.com/") == "insecure_url"
    assert check_url("http://hooks.example.com/", Policy(webhooks_allow_insecure=True))
    assert refused("ftp://hooks.example.com/") == "invalid_url"
    assert refused("javascript:alert(1)") == "invalid_url"
    assert refused("//hooks.example.com/") == "invalid_url"


@pytest.mark.parametrize("url", [
    "https://user:pass@hooks.example.com/",
    "https://user@hooks.example.com/",
    "https://hooks.example.com@127.0.0.1/",
    "https://:@hooks.example.com/",
])  # fmt: skip
def test_credentials_in_the_url_are_refused(url):
    assert refused(url, DEVELOPMENT) == "credentials_in_url"


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/", "https://127.8.9.10:8080/", "https://localhost/",
    "https://api.localhost/", "https://[::1]/", "https://[0:0:0:0:0:0:0:1]/",
    "https://[::ffff:127.0.0.1]/", "https://[::ffff:7f00:1]/", "https://10.0.0.5/",
    "https://172.16.3.4/", "https://192.168.1.1/", "https://[fd12:3456::1]/",
    "https://169.254.10.10/", "https://[fe80::1]/", "https://100.64.0.1/",
    "https://[64:ff9b::7f00:1]/", "https://[2002:7f00:1::]/",
])  # fmt: skip
def test_loopback_private_and_link_local_literals_are_refused_in_production(url):
    assert refused(url) == "forbidden_host"
    assert check_url(url, DEVELOPMENT)


@pytest.mark.parametrize("url", [
    "https://169.254.169.254/latest/meta-data/", "https://[fd00:ec2::254]/",
    "https://100.100.100.200/", "https://[::ffff:169.254.169.254]/",
    "https://metadata.google.internal/computeMetadata/v1/", "https://0.0.0.0/",
    "https://0.1.2.3/", "https://[::]/", "https://224.0.0.1/", "https://255.255.255.255/",
    "https://240.0.0.1/",
])  # fmt: skip
def test_metadata_unspecified_and_multicast_are_refused_everywhere(url):
    assert refused(url) == "forbidden_host"
    assert refused(url, DEVELOPMENT) == "forbidden_host"


@pytest.mark.parametrize("url", [
    "https://2130706433/",          # decimal 127.0.0.1
    "https://0x7f000001/",          # hex
    "https://0x7f.0.0.1/",
    "https://0177.0.0.1/",          # octal
    "https://127.1/",               # short form
    "https://017700000001/",
    "https://1.2.3.04/",            # leading zero: octal to some parsers
])  # fmt: skip
def test_non_canonical_ipv4_forms_are_refused_even_where_private_is_allowed(url):
    assert refused(url, DEVELOPMENT) == "invalid_host"


@pytest.mark.parametrize("url", [
    "https://１２７.０.０.１/",       # fullwidth digits fold to 127.0.0.1
    "https://127。0。0。1/",         # ideographic full stops
    "https://①②⑦.⓪.⓪.①/",
])  # fmt: skip
def test_unicode_look_alikes_of_addresses_are_judged_as_the_address(url):
    assert refused(url) == "forbidden_host"


@pytest.mark.parametrize("url", [
    "https://hooks.example.com/a b", "https://hooks.example.com/\r\nX-Injected: 1",
    "https://hooks.example.com\\@127.0.0.1/", "https://hooks.example.com/#frag",
    "https://hooks.example.com:0/", "https://hooks.example.com:99999/", "https:///path",
    "https://exa_mple..com/", "https://-bad-.example.com/", "https://[fe80::1%25eth0]/",
    "https://[::1/", "https://" + "a" * 64 + ".example.com/",
])  # fmt: skip
def test_malformed_urls_are_refused(url):
    assert refused(url, DEVELOPMENT) in {"invalid_url", "invalid_host"}


def test_overlong_urls_are_refused():
    url = "https://hooks.example.com/" + "a" * 2100
    assert refused(url) == "too_long"
    assert check_url("https://hooks.example.com/" + "a" * 2000, PRODUCTION)


def test_delivery_time_guard_refuses_what_registration_refuses():
    for ip in ("127.0.0.1", "::1", "10.1.2.3", "169.254.1.1", "::ffff:192.168.0.1"):
        with pytest.raises(ForbiddenAddress):
            check_target_address(ip, PRODUCTION)
        assert check_target_address(ip, DEVELOPMENT) == ipaddress.ip_address(ip)
    for ip in ("169.254.169.254", "0.0.0.0", "::", "ff02::1", "::ffff:169.254.169.254"):
        with pytest.raises(ForbiddenAddress):
            check_target_address(ip, DEVELOPMENT)
    assert check_target_address("93.184.216.34", PRODUCTION) == ipaddress.ip_address(
        "93.184.216.34"
    )
    assert target_refusal(ipaddress.ip_address("2606:4700::1111"), False) is None
