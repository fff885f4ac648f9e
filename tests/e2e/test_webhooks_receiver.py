"""The test receiver itself: its signature check follows platform.md 7.5 (the worked example, the
tolerance, rotation with two `v1` entries, a tampered body), and it speaks HTTP/1.1 keep-alive,
scripted statuses, blackholing and down as the webhook tests rely on."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import httpx
import pytest

from authpi.testing.receiver import WebhookReceiver, verify_signature

SECRET = "whs_Qm9vN3pXc2VjcmV0S2V5Rm9yRG9jc09ubHkxMjM0NTY"
T = 1781950530
BODY = (
    b'{"specversion":"1.0","id":"dlv_01JZ8Q4M3T7V2K9X5B6N1R0C4D","source":"com.authpi.webhooks/v1/'
    b'wh_abc123xyz","type":"event","datacontenttype":"application/json","time":"2026-06-20T10:15:'
    b'30Z","data":{"spec":"1","id":"evt_01JZ8Q4M2Y3H5N7P9R1T3V5X7Z","type":"user.created","source'
    b'":"com.authpi/v1","trace":"3f1c9a7e2b","trigger":"api","auth":{"type":"api_key","key_id":"k'
    b'ey_4f8a2b9c0d1e4f5a8b7c6d5e4f3a2b1c"},"subject":{"account_id":"acc_7k2m9x4p1q8w5e3r6t0y2u4i7'
    b'","issuer_id":"i_4r8w2k9m5x1p7q3e6t0y2u4i8","user_id":"usr_01j4h7k3m5n8"},"timestamp":17819'
    b'50530123,"data":{"id":"usr_01j4h7k3m5n8","username_type":"email","status":"active"}}}'
)
V1 = "dc776252dd9e77f39e9a7ae3e213b8d45676ac1e7f10a4efa1ccbc889599ba94"
V1_NEXT_SECOND = "a9a5c371025cfdfa77189767437c14f829555575d22199a9158f75c8a3c23258"


def test_worked_example_of_the_spec_verifies():
    assert len(BODY) == 633
    assert verify_signature(BODY, f"t={T},v1={V1}", [SECRET], now=T)
    assert verify_signature(BODY, f"t={T + 1},v1={V1_NEXT_SECOND}", [SECRET], now=T)
    # The timestamp is bound, the body is bound, the whole secret (with whs_) is the key.
    assert not verify_signature(BODY, f"t={T + 1},v1={V1}", [SECRET], now=T)
    assert not verify_signature(BODY + b" ", f"t={T},v1={V1}", [SECRET], now=T)
    assert not verify_signature(BODY, f"t={T},v1={V1}", [SECRET.removeprefix("whs_")], now=T)


def test_tolerance_rotation_and_malformed_headers():
    assert verify_signature(BODY, f"t={T},v1={V1}", [SECRET], now=T + 300)
    assert not verify_signature(BODY, f"t={T},v1={V1}", [SECRET], now=T + 301)
    assert not verify_signature(BODY, f"t={T},v1={V1}", [SECRET], now=T - 301)
    rotated = f"t={T},v1={'0' * 64},v1={V1}"  # new secret unknown to this receiver, old one known
    assert verify_signature(BODY, rotated, [SECRET], now=T)
    for bad in ("", f"v1={V1}", f"t=abc,v1={V1}", f"t={T}", f"t={T},t={T},v1={V1}"):
        assert not verify_signature(BODY, bad, [SECRET], now=T), bad


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    t = str(int(time.time()))
    sig = hmac.new(secret.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "content-type": "application/json",
        "user-agent": "AuthPI-Webhooks/1.0",
        "x-webhook-signature": f"t={t},v1={sig}",
        "x-webhook-id": "dlv_01JZ8Q4M3T7V2K9X5B6N1R0C4D",
        "x-webhook-event-id": "evt_01JZ8Q4M2Y3H5N7P9R1T3V5X7Z",
        "x-webhook-event-type": "user.created",
        "x-webhook-attempt": "1",
    }


async def test_receiver_records_checks_scripts_and_keeps_alive():
    async with WebhookReceiver() as r, httpx.AsyncClient(timeout=5) as http:
        r.secrets = [SECRET]
        r.webhook_id = "wh_abc123xyz"
        r.answer(500, 500, 500)
        codes = [(await http.post(r.url, content=BODY, headers=_signed(BODY))).status_code
                 for _ in range(4)]  # fmt: skip
        assert codes == [500, 500, 500, 200]
        assert r.accepted == 1  # one keep-alive connection
        assert r.problems() == []
        bad = await http.post(r.url, content=BODY, headers=_signed(BODY, SECRET + "x"))
        assert bad.status_code == 200 and r.requests[-1].problems == ["signature"]
        assert r.event_ids == {"evt_01JZ8Q4M2Y3H5N7P9R1T3V5X7Z"}


async def test_receiver_blackholed_and_down():
    async with WebhookReceiver() as r, httpx.AsyncClient(timeout=0.5) as http:
        r.blackholed = True
        with pytest.raises(httpx.ReadTimeout):
            await http.post(r.url, content=BODY, headers=_signed(BODY))
        assert r.count == 1 and r.requests[0].status is None
        r.blackholed = False
        await r.down()
        with pytest.raises(httpx.ConnectError):
            await http.post(r.url, content=BODY, headers=_signed(BODY))
        await r.start()
        resp = await http.post(r.url, content=BODY, headers=_signed(BODY))
        assert resp.status_code == 200 and r.count == 2
    await asyncio.sleep(0)
