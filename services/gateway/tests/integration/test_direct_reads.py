"""The direct reads (authpi.gateway.edge.direct_reads) answer exactly as litestar's routes do: each
request is sent as it is (answered before the router) and with a query parameter no route reads
(which always goes through litestar's router and the gateway's middleware), and both answers
must carry the same status, headers and body, for successes and for every kind of refusal."""

from __future__ import annotations

from typing import Any

import httpx

from authpi.platform.testing.tenants import basic

VARYING = frozenset({"date", "x-request-id"})


def _answer(resp: httpx.Response) -> tuple[int, dict[str, str], Any]:
    body = resp.json() if resp.content else None
    if isinstance(body, dict):
        body.pop("reference", None)  # the request id
    headers = {k: v for k, v in resp.headers.items() if k not in VARYING}
    return resp.status_code, headers, body


async def test_direct_reads_answer_as_the_routed_requests(platform):
    key = basic(platform.api_key_id, platform.api_key_secret)
    account = f"/v1/accounts/{platform.account_id}"
    async with httpx.AsyncClient(base_url=platform.api_url) as http:
        issuer = await http.post(f"{account}/issuers", json={"name": "direct"}, headers=key)
        issuer_id = issuer.json()["data"]["id"]
        users = f"{account}/issuers/{issuer_id}/users"
        made = await http.post(
            users, json={"username_type": "email", "username": "direct@example.test"},
            headers=key,
        )  # fmt: skip
        user_id = made.json()["data"]["id"]
        weak = await http.post(
            f"{account}/api-keys",
            json={"name": "weak", "restrictions": {"scopes": ["api-keys:read"]}},
            headers=key,
        )
        weak_key = basic(weak.json()["data"]["id"], weak.json()["data"]["secret_plain"])
        cases: list[tuple[str, dict[str, str], int]] = [
            ("/v1/me", key, 200),
            ("/v1/me", weak_key, 200),
            ("/v1/me", {}, 401),
            ("/v1/me", basic(platform.api_key_id, "not-the-secret"), 401),
            ("/v1/me", {"Authorization": "Basic %%%"}, 401),
            ("/v1/me", {"Authorization": "Bearer not-a-token"}, 401),
            (users, key, 200),
            (f"{users}/{user_id}", key, 200),
            (f"{users}/{user_id}", weak_key, 403),
            (users, weak_key, 403),
            (f"{users}/usr_none", key, 404),
            (f"{account}/issuers/i_none/users/{user_id}", key, 404),
            (f"/v1/accounts/acc_none/issuers/{issuer_id}/users", key, 404),
            (f"{users}/a%00b", key, 404),
        ]
        for path, headers, status in cases:
            direct = await http.get(path, headers=headers)
            routed = await http.get(path, params={"unread": "1"}, headers=headers)
            assert direct.status_code == status, (path, direct.text)
            assert _answer(direct) == _answer(routed), path
            assert direct.headers["x-request-id"].startswith("req_")
        listed = (await http.get(users, headers=key)).json()
        assert [u["user_id"] for u in listed["data"]] == [user_id]
        assert listed["has_more"] is False and listed["next_cursor"] is None
        got = await http.get(f"{users}/{user_id}", headers=key)
        assert got.json()["data"]["username"] == "direct@example.test" and got.headers["etag"]
