"""TOTP codes (RFC 6238 with pyotp: HMAC-SHA1, 6 digits, 30-second steps) and backup codes, as
pure functions: randomness comes in as strings from the caller's `Ids`, time as Unix ms, keys as
bytes derived from the KEK.

- A secret is 160 random bits in base32 (RFC 4226 4 recommends 160). It is shown once, in the
  enrolment answer and its `otpauth://` URI, and otherwise kept sealed.
- A code is accepted for the current step and one step either side (clock drift); the caller
  learns *which* step matched, so the verifier can refuse that step and every earlier one.
- Backup codes are 10 characters of Crockford base32 (50 bits), shown as `XXXXX-XXXXX`, and
  stored as HMAC-SHA256 digests under a KEK-derived key bound to the verifier: a copy of the
  store without the KEK cannot be searched for them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from pyotp.totp import TOTP

DIGITS = 6
PERIOD_S = 30
WINDOW = 1  # steps accepted either side of the current one
BACKUP_CODES = 10
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_secret(random: str) -> str:
    """A base32 secret of 160 bits drawn from `random` (a high-entropy string)."""
    raw = hashlib.sha256(random.encode()).digest()[:20]
    return base64.b32encode(raw).decode()


def step_at(now_ms: int, period_s: int = PERIOD_S) -> int:
    return now_ms // 1000 // period_s


def matching_step(
    secret: str, code: str, now_ms: int, *, digits: int = DIGITS, period_s: int = PERIOD_S
) -> int | None:
    """The time step whose code `code` is, within the window around `now_ms`; None otherwise.
    Every candidate is computed and compared in constant time."""
    code = code.strip().replace(" ", "")
    if len(code) != digits or not code.isascii() or not code.isdigit():
        return None
    totp = TOTP(secret, digits=digits, interval=period_s)
    now = step_at(now_ms, period_s)
    found = None
    for step in range(now - WINDOW, now + WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def code_at(secret: str, step: int, *, digits: int = DIGITS, period_s: int = PERIOD_S) -> str:
    """The code of `step` (what an authenticator app shows during that step)."""
    return TOTP(secret, digits=digits, interval=period_s).generate_otp(step)


def provisioning_uri(secret: str, account: str, issuer_name: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads (usually from a QR code)."""
    return TOTP(secret, digits=DIGITS, interval=PERIOD_S).provisioning_uri(
        name=account, issuer_name=issuer_name
    )


def backup_code(random: str) -> str:
    """One backup code, `XXXXX-XXXXX`, drawn from `random`."""
    raw = hashlib.sha256(random.encode()).digest()
    chars = "".join(_CROCKFORD[b % 32] for b in raw[:10])
    return f"{chars[:5]}-{chars[5:]}"


def normalise_backup_code(code: str) -> str:
    """As typed: any case, with or without the hyphen and spaces, O for 0 and I or L for 1."""
    return code.strip().upper().replace("-", "").replace(" ", "").translate(_CONFUSABLE)


def backup_digest(key: bytes, verifier_id: str, code: str) -> str:
    message = f"{verifier_id}:{normalise_backup_code(code)}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def looks_like_totp(code: str, digits: int = DIGITS) -> bool:
    code = code.strip().replace(" ", "")
    return len(code) == digits and code.isascii() and code.isdigit()
