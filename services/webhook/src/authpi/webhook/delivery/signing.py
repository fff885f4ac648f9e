"""Webhook signatures (platform.md 7.5): HMAC-SHA256 keyed with the whole secret string
(`whs_…`, UTF-8), over `<t>.<raw body>`, sent as `t=<t>,v1=<hex>` with one `v1` per active
secret (newest first, the previous one during a rotation's 24 hours)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


def signature(secret: str, t: int, body: bytes) -> str:
    return hmac.digest(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hex()


def signature_header(secrets: Sequence[str], t: int, body: bytes) -> str:
    return ",".join([f"t={t}", *(f"v1={signature(s, t, body)}" for s in secrets)])
