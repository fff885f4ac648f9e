"""An organization's `sso` object over the Core API (core-api.md 3.12, 3.16): decoded strictly,
so an unknown field, a wrong type, a connection type that is not served or a configuration that
cannot work is a 422 naming the field in the spec's error body; a PATCH merges into the stored
object; the client secret is write-only, never in a response or an event in clear, only wrapped
by the key-encryption key (which the token service's view holds as well)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from psycopg import sql

from authpi.contracts.directory import sso_secret_context
from authpi.platform.testing.tenants import schema_of
from authpi.platform.testing.upstream import sso_config
from authpi.testing.plugin import eventually
from services.directory.tests.integration.conftest import bootstrap_key, new_issuer

# Public APIs only (tests that read the database or reach another account stay all-in-one):
# also run against the distributed run (platform testing plugin).
pytestmark = pytest.mark.sdk


def orgs_url(platform: Any, issuer: str) -> str:
    return f"{platform.api_url}/v1/accounts/{platform.account_id}/issuers/{issuer}/organizations"


async def send(platform: Any, method: str, url: str, body: Any) -> httpx.Response:
    async with httpx.AsyncClient(auth=bootstrap_key(platform), timeout=30) as http:
        return await http.request(method, url, json=body)


def problem(answer: httpx.Response) -> tuple[str, str]:
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "invalid_request", body
    assert body["error_description"] and "reference" in body
    [field] = body["fields"]
    return field["field"], field["code"]


async def test_the_sso_object_is_validated_strictly(platform, admin):
    url = orgs_url(platform, await new_issuer(admin))
    refused = {
        ("sso.foo", "unknown_field"): {"foo": 1},
        ("sso.enabled", "invalid_type"): {"enabled": "yes"},
        ("sso.connection_type", "invalid_value"): {"connection_type": "saml"},
        ("sso.token_endpoint_auth_method", "invalid_value"): {
            "token_endpoint_auth_method": "private_key_jwt"
        },
        ("sso.client_id", "required"): {"enabled": True, "issuer_url": "https://idp.acme.test"},
        ("sso.issuer_url", "required"): {"enabled": True, "client_id": "authpi"},
        ("sso.client_secret", "required"): sso_config(client_secret=None),
        ("sso.issuer_url", "invalid_value"): {"issuer_url": "https://idp.acme.test/?x=1"},
        ("sso.sso_only", "invalid_value"): {"sso_only": True},
        ("sso.scopes", "invalid_value"): {"scopes": ["email"]},
    }
    for expected, sso in refused.items():
        answer = await send(platform, "POST", url, {"name": "Acme", "sso": sso})
        assert problem(answer) == expected, (sso, answer.text)
    # The deployment allows insecure SSO URLs (development): plain http is accepted here; a
    # deployment that does not refuses it (the decider's unit tests show both).
    accepted = await send(
        platform, "POST", url,
        {"name": "Acme", "sso": sso_config(issuer_url="http://127.0.0.1:9/", sso_only=True)},
    )  # fmt: skip
    assert accepted.status_code == 201, accepted.text
    sso = accepted.json()["data"]["sso"]
    assert sso == {
        "enabled": True, "sso_only": True, "connection_type": "oidc",
        "issuer_url": "http://127.0.0.1:9/", "client_id": "authpi",
        "scopes": ["openid", "email", "profile"],
        "token_endpoint_auth_method": "client_secret_basic", "client_secret_set": True,
    }  # fmt: skip


async def test_a_patch_merges_and_the_secret_stays_wrapped(platform, admin, pool):
    issuer = await new_issuer(admin)
    orgs = admin.issuer(issuer).organizations
    org = await orgs.create({"name": "Acme"})
    assert org.sso == {**org.sso, "enabled": False, "sso_only": False, "client_secret_set": False}
    secret = f"upstream-secret-{uuid.uuid4().hex}"
    updated = await orgs.update(org.id, {"sso": sso_config(client_secret=secret)})
    assert updated.sso["enabled"] is True and updated.sso["client_secret_set"] is True
    only = await orgs.update(org.id, {"sso": {"sso_only": True, "client_secret_set": False}})
    assert only.sso == {**updated.sso, "sso_only": True}  # merged; the read-only flag ignored
    # Removing the secret of an enabled configuration that needs one: refused.
    url = f"{orgs_url(platform, issuer)}/{org.id}"
    answer = await send(platform, "PATCH", url, {"sso": {"client_secret": None}})
    assert problem(answer) == ("sso.client_secret", "required")
    assert secret not in (await send(platform, "PATCH", url, {})).text

    query = sql.SQL("SELECT type, data::text FROM {}.events WHERE stream_id = %s").format(
        schema_of(platform, "directory")
    )
    async with pool.connection() as conn:
        rows = await (await conn.execute(query, [org.id])).fetchall()
    assert rows and all(secret not in data for _, data in rows)
    kek = platform.handle.runtimes["directory"].kek
    sso_events = [json.loads(data) for t, data in rows if t.startswith("organization.sso.")]
    [wrapped] = [e["client_secret_sealed"] for e in sso_events if e["client_secret_sealed"]]
    assert kek.unwrap(wrapped, sso_secret_context(org.id)).decode() == secret

    # The token service learns the wrapped secret from the events (never the directory's tables).
    token_view = sql.SQL("SELECT sso_client_secret FROM {}.organizations_view WHERE id = %s")
    token_view = token_view.format(schema_of(platform, "token"))

    async def learnt() -> bool:
        async with pool.connection() as conn:
            row = await (await conn.execute(token_view, [org.id])).fetchone()
        return row is not None and row[0] == wrapped

    await eventually(learnt)
    rotated = await admin.issuer(issuer).organization(org.id).sso.rotate_secret()

    async def rotated_learnt() -> bool:
        async with pool.connection() as conn:
            row = await (await conn.execute(token_view, [org.id])).fetchone()
        return (
            row is not None
            and row[0] is not None
            and (kek.unwrap(row[0], sso_secret_context(org.id)).decode() == rotated.secret)
        )

    await eventually(rotated_learnt)
