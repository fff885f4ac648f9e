"""A revoked token reads as inactive at the very next introspection, in every IdP process
(idp-api.md 7; DESIGN.md 3). Each IdP process keeps an in-memory deny-list fed by JetStream
(authpi.token.caches.revoked_tokens) and a cache of verified tokens (signing.verifier): /revoke
answers only once every process's deny-list holds the revocation.

`authpi up` with an IdP worker beside the main process; every request on a new connection, so
the kernel spreads them over both processes. Each loop introspects a fresh token (active, so it
is in the verified-token cache of whichever processes answered), revokes it, then introspects it
again several times with no wait: every answer after the revocation must be inactive."""

from __future__ import annotations

from tests.security.test_read_your_writes import Tenant, up_with_idp_workers

LOOPS = 40
AFTER = 4  # introspections after each revocation


async def introspect(t: Tenant, auth: tuple[str, str], token: str) -> dict:
    resp = await t.idp.post(
        f"{t.idp_url}/{t.issuer_id}/introspect", data={"token": token}, auth=auth
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_revoked_then_introspected_in_every_idp_process(infra, tmp_path):
    async with up_with_idp_workers(infra, tmp_path) as t:
        await t.open()
        client_id, secret = await t.m2m()
        auth = (client_id, secret)
        failures = []
        for i in range(LOOPS):
            resp = await t.token(client_id, secret)
            assert resp.status_code == 200, resp.text
            token = resp.json()["access_token"]
            for _ in range(2):
                if (await introspect(t, auth, token))["active"] is not True:
                    failures.append(f"loop {i}: a live token read inactive")
            revoked = await t.idp.post(
                f"{t.idp_url}/{t.issuer_id}/revoke", data={"token": token}, auth=auth
            )
            assert revoked.status_code == 200, revoked.text
            for n in range(AFTER):
                answer = await introspect(t, auth, token)
                if answer != {"active": False}:
                    failures.append(f"loop {i}, introspection {n} after revoking: {answer}")
        assert failures == []
