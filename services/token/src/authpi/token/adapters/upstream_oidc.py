"""What the token service asks an organization's upstream OpenID Provider over HTTP: its
metadata (OpenID Connect Discovery 1.0, section 4), its signing keys (the `jwks_uri`), the
authorization code exchange (OIDC Core 3.1.3) and, when the ID token names no address, the
userinfo endpoint (OIDC Core 5.3).

Every URL is https, or plain http where the deployment allows insecure SSO URLs
(AUTHPI_SSO_ALLOW_INSECURE, development). Answers are JSON objects of at most 1 MiB, read with a
timeout and without following redirects. The metadata document must name exactly the issuer it
was fetched for (Discovery 4.3). Metadata and keys are cached per process for ten minutes; a key
id the cached set lacks refetches the set (a rotation), at most once every 30 seconds."""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import quote_plus, urlsplit

import httpx
import msgspec

from authpi.crypto.clock import Clock

MAX_BODY = 1 << 20
TIMEOUT_S = 10.0
CACHE_MS = 600_000
REFETCH_KEYS_MS = 30_000


class UpstreamError(Exception):
    """The upstream could not be used: `reason` is logged, `description` may be shown."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


class UpstreamMetadata(msgspec.Struct, frozen=True, kw_only=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    id_token_signing_alg_values_supported: list[str] = msgspec.field(
        default_factory=lambda: ["RS256"]
    )
    code_challenge_methods_supported: list[str] | None = None


class _Cached(msgspec.Struct, kw_only=True):
    value: Any
    at: int


def usable_url(url: str, allow_insecure: bool) -> bool:
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_insecure else ("https",)
    return parts.scheme in allowed and bool(parts.hostname) and parts.username is None


def basic_credentials(client_id: str, secret: str) -> str:
    """RFC 6749 2.3.1: each part form-urlencoded before the Basic encoding."""
    user, password = quote_plus(client_id, safe=""), quote_plus(secret, safe="")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class UpstreamOidc:
    def __init__(self, clock: Clock, *, allow_insecure: bool, timeout_s: float = TIMEOUT_S) -> None:
        self.clock = clock
        self.allow_insecure = allow_insecure
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._metadata: dict[str, _Cached] = {}
        self._keys: dict[str, _Cached] = {}
        self._lock = asyncio.Lock()

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _check(self, url: str, what: str) -> None:
        if not usable_url(url, self.allow_insecure):
            raise UpstreamError(
                "sso.upstream_insecure_url",
                f"the identity provider's {what} is not an https URL",
            )

    async def _json(self, request: httpx.Request, what: str) -> dict[str, Any]:
        try:
            response = await self.client.send(request, stream=True)
            try:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        raise UpstreamError("sso.upstream_too_large", f"the {what} is too large")
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"sso.upstream_unreachable:{type(exc).__name__}",
                f"the identity provider's {what} could not be reached",
            ) from exc
        try:
            value = msgspec.json.decode(bytes(body))
        except msgspec.DecodeError:
            value = None
        if response.status_code != 200 or not isinstance(value, dict):
            error = value.get("error") if isinstance(value, dict) else None  # pyright: ignore[reportUnknownMemberType,reportUnknownVariableType]
            raise UpstreamError(
                f"sso.upstream_refused:{response.status_code}:{error}",
                f"the identity provider's {what} answered {response.status_code}"
                + (f" ({error})" if isinstance(error, str) else ""),
            )
        return value  # pyright: ignore[reportUnknownVariableType]

    async def metadata(self, issuer_url: str) -> UpstreamMetadata:
        cached = self._metadata.get(issuer_url)
        now = self.clock.now_ms()
        if cached is not None and now - cached.at < CACHE_MS:
            return cached.value
        self._check(issuer_url, "issuer URL")
        url = issuer_url.rstrip("/") + "/.well-known/openid-configuration"
        raw = await self._json(self.client.build_request("GET", url), "discovery document")
        try:
            meta = msgspec.convert(raw, UpstreamMetadata)
        except msgspec.ValidationError as exc:
            raise UpstreamError(
                "sso.upstream_metadata_invalid", f"the discovery document is invalid: {exc}"
            ) from None
        if meta.issuer != issuer_url:
            raise UpstreamError(
                "sso.upstream_issuer_mismatch",
                "the discovery document names another issuer than the configured issuer URL",
            )
        for url, what in (
            (meta.authorization_endpoint, "authorization endpoint"),
            (meta.token_endpoint, "token endpoint"),
            (meta.jwks_uri, "JWKS URI"),
        ):
            self._check(url, what)
        self._metadata[issuer_url] = _Cached(value=meta, at=now)
        return meta

    async def keys(self, meta: UpstreamMetadata, kid: str | None) -> list[dict[str, Any]]:
        """The upstream's public keys; fetched again when `kid` is not among the cached ones."""
        now = self.clock.now_ms()
        cached = self._keys.get(meta.jwks_uri)
        if cached is not None and now - cached.at < CACHE_MS:
            keys: list[dict[str, Any]] = cached.value
            known = kid is None or any(k.get("kid") == kid for k in keys)
            if known or now - cached.at < REFETCH_KEYS_MS:
                return keys
        async with self._lock:
            raw = await self._json(self.client.build_request("GET", meta.jwks_uri), "JWKS")
        found = raw.get("keys")
        if not isinstance(found, list):
            raise UpstreamError("sso.upstream_jwks_invalid", "the JWKS holds no keys")
        keys = [k for k in found if isinstance(k, dict)]  # pyright: ignore[reportUnknownVariableType]
        self._keys[meta.jwks_uri] = _Cached(value=keys, at=now)
        return keys

    async def exchange(
        self,
        meta: UpstreamMetadata,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        client_id: str,
        client_secret: str | None,
        auth_method: str,
    ) -> dict[str, Any]:
        """The token response of an authorization code (OIDC Core 3.1.3.1)."""
        form = {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }  # fmt: skip
        headers = {"Accept": "application/json"}
        if auth_method == "client_secret_basic" and client_secret is not None:
            headers["Authorization"] = basic_credentials(client_id, client_secret)
        elif auth_method == "client_secret_post" and client_secret is not None:
            form |= {"client_id": client_id, "client_secret": client_secret}
        else:
            form["client_id"] = client_id
        request = self.client.build_request("POST", meta.token_endpoint, data=form, headers=headers)
        return await self._json(request, "token endpoint")

    async def userinfo(self, meta: UpstreamMetadata, access_token: str) -> dict[str, Any]:
        if meta.userinfo_endpoint is None:
            raise UpstreamError("sso.upstream_no_userinfo", "the identity provider has no userinfo")
        self._check(meta.userinfo_endpoint, "userinfo endpoint")
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        request = self.client.build_request("GET", meta.userinfo_endpoint, headers=headers)
        return await self._json(request, "userinfo endpoint")
