"""The x402 wire formats (platform.md 5.7): challenges (v2 `PAYMENT-REQUIRED` header, v1 JSON
body), payments (v2 `PAYMENT-SIGNATURE`, v1 `X-PAYMENT`) and settlement responses
(`PAYMENT-RESPONSE`, `X-PAYMENT-RESPONSE`). Every header value is base64 of UTF-8 JSON."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec

V2_CHALLENGE = "PAYMENT-REQUIRED"
V2_PAYMENT = "PAYMENT-SIGNATURE"
V2_RESPONSE = "PAYMENT-RESPONSE"
V1_PAYMENT = "X-PAYMENT"
V1_RESPONSE = "X-PAYMENT-RESPONSE"

SCHEME = "exact"
DESCRIPTION = "AuthPI credit top-up"
MIME_TYPE = "application/json"

# x402 v1 names networks; v2 uses CAIP-2 (platform.md 4.2, 5.7). A network without a v1 name
# (a local chain) keeps its CAIP-2 id in v1 messages too.
V1_NAMES = {
    "eip155:8453": "base",
    "eip155:84532": "base-sepolia",
    "eip155:1": "ethereum",
    "eip155:43114": "avalanche",
    "eip155:43113": "avalanche-fuji",
    "eip155:137": "polygon",
    "eip155:80002": "polygon-amoy",
}
CAIP2_OF_V1 = {name: caip2 for caip2, name in V1_NAMES.items()}

_HEX32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")


class Refusal(Exception):
    """A payment refused with one of the spec's error reasons (platform.md 5.7). `status` is
    402 (payment failed), 400 (malformed payload or requirements) or 500 (our side failed)."""

    def __init__(
        self, reason: str, message: str, *, payer: str | None = None, status: int = 402
    ) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.payer = payer
        self.status = status


def v1_network(caip2: str) -> str:
    return V1_NAMES.get(caip2, caip2)


def caip2_network(name: str) -> str:
    """A v1 network name or a CAIP-2 id, as CAIP-2."""
    return CAIP2_OF_V1.get(name, name)


def chain_id_of(caip2: str) -> int:
    namespace, _, reference = caip2.partition(":")
    if namespace != "eip155" or not reference.isdigit():
        raise ValueError(f"not an eip155 network: {caip2!r}")
    return int(reference)


class Requirement(msgspec.Struct, frozen=True, kw_only=True):
    """What this server asks for: an `exact` transfer of `amount` base units of `asset` to
    `pay_to` on `network` (CAIP-2), signed for the token's EIP-712 domain `name`/`version`."""

    network: str
    asset: str
    pay_to: str
    amount: int
    name: str
    version: str
    max_timeout_seconds: int = 300
    resource_url: str = ""

    def v2(self) -> dict[str, Any]:
        return {
            "scheme": SCHEME,
            "network": self.network,
            "amount": str(self.amount),
            "asset": self.asset,
            "payTo": self.pay_to,
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": {"name": self.name, "version": self.version},
        }

    def v1(self) -> dict[str, Any]:
        return {
            "scheme": SCHEME,
            "network": v1_network(self.network),
            "maxAmountRequired": str(self.amount),
            "asset": self.asset,
            "payTo": self.pay_to,
            "resource": self.resource_url,
            "description": DESCRIPTION,
            "mimeType": MIME_TYPE,
            "maxTimeoutSeconds": self.max_timeout_seconds,
            "extra": {"name": self.name, "version": self.version},
        }


def payment_required_v2(req: Requirement, error: str) -> dict[str, Any]:
    return {
        "x402Version": 2,
        "error": error,
        "resource": {"url": req.resource_url, "description": DESCRIPTION, "mimeType": MIME_TYPE},
        "accepts": [req.v2()],
    }


def challenge_body_v1(req: Requirement) -> dict[str, Any]:
    """The x402 v1 part of the 402 JSON body (platform.md 5.6); the AuthPI error fields are
    added beside it by whoever renders the response."""
    return {"x402Version": 1, "accepts": [req.v1()]}


def encode_header(value: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_header(value: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(value.strip() + "=" * (-len(value.strip()) % 4), validate=False)
        decoded = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise Refusal(
            "invalid_payload", "the payment header is not base64 JSON", status=400
        ) from None
    if not isinstance(decoded, dict):
        raise Refusal("invalid_payload", "the payment header is not a JSON object", status=400)
    return decoded  # type: ignore[return-value]


class Authorization(msgspec.Struct, frozen=True, kw_only=True):
    """EIP-3009 `TransferWithAuthorization` fields; addresses as given, numbers parsed."""

    from_: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: str

    def wire(self) -> dict[str, str]:
        return {
            "from": self.from_,
            "to": self.to,
            "value": str(self.value),
            "validAfter": str(self.valid_after),
            "validBefore": str(self.valid_before),
            "nonce": self.nonce,
        }


class Payment(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded payment of either version. `accepted` is the v2 copy of the chosen requirement
    (None in v1). `network` is CAIP-2."""

    version: int
    scheme: str
    network: str
    accepted: dict[str, Any] | None
    signature: str
    authorization: Authorization
    raw: dict[str, Any]

    @property
    def payer(self) -> str:
        return self.authorization.from_


def payment_header(headers: Mapping[str, str]) -> tuple[int, str] | None:
    """(version by header, value) of the payment header the request carries, if any."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if V2_PAYMENT.lower() in lowered:
        return 2, lowered[V2_PAYMENT.lower()]
    if V1_PAYMENT.lower() in lowered:
        return 1, lowered[V1_PAYMENT.lower()]
    return None


def read_payment(document: Mapping[str, Any]) -> Payment:
    """Parse a PaymentPayload of version 1 or 2 (platform.md 5.7); structural problems are
    `invalid_payload`, an unknown version `invalid_x402_version`."""
    version = document.get("x402Version")
    if version not in (1, 2) or isinstance(version, bool):
        raise Refusal("invalid_x402_version", f"x402Version {version!r} is not supported")
    accepted: dict[str, Any] | None = None
    if version == 2:
        accepted_raw = document.get("accepted")
        if not isinstance(accepted_raw, dict):
            raise Refusal("invalid_payload", "`accepted` must be an object", status=400)
        accepted = dict(accepted_raw)  # type: ignore[arg-type]
        scheme, network = accepted.get("scheme"), accepted.get("network")
    else:
        scheme, network = document.get("scheme"), document.get("network")
    if not isinstance(scheme, str) or not isinstance(network, str):
        raise Refusal("invalid_payload", "`scheme` and `network` are required", status=400)
    payload = document.get("payload")
    if not isinstance(payload, dict):
        raise Refusal("invalid_payload", "`payload` must be an object", status=400)
    signature = payload.get("signature")  # type: ignore[union-attr]
    auth = payload.get("authorization")  # type: ignore[union-attr]
    if not isinstance(signature, str) or not _SIGNATURE.match(signature):
        raise Refusal(
            "invalid_payload", "`payload.signature` must be 65 bytes of 0x hex", status=400
        )
    if not isinstance(auth, dict):
        raise Refusal("invalid_payload", "`payload.authorization` must be an object", status=400)
    return Payment(
        version=version,
        scheme=scheme,
        network=caip2_network(network),
        accepted=accepted,
        signature=signature,
        authorization=_authorization(auth),  # type: ignore[arg-type]
        raw=dict(document),
    )


def _authorization(auth: Mapping[str, Any]) -> Authorization:
    def address(key: str) -> str:
        value = auth.get(key)
        if not isinstance(value, str) or not _ADDRESS.match(value):
            raise Refusal(
                "invalid_payload", f"`authorization.{key}` must be a 0x address", status=400
            )
        return value

    def number(key: str) -> int:
        value = auth.get(key)
        try:
            if isinstance(value, str):
                parsed = int(value, 16) if value.startswith(("0x", "0X")) else int(value, 10)
            elif isinstance(value, int) and not isinstance(value, bool):
                parsed = value
            else:
                raise ValueError
        except ValueError:
            raise Refusal(
                "invalid_payload", f"`authorization.{key}` must be an integer", status=400
            ) from None
        if not 0 <= parsed < 2**256:
            raise Refusal("invalid_payload", f"`authorization.{key}` is out of range", status=400)
        return parsed

    nonce = auth.get("nonce")
    if not isinstance(nonce, str) or not _HEX32.match(nonce):
        raise Refusal(
            "invalid_payload", "`authorization.nonce` must be 32 bytes of 0x hex", status=400
        )
    return Authorization(
        from_=address("from"),
        to=address("to"),
        value=number("value"),
        valid_after=number("validAfter"),
        valid_before=number("validBefore"),
        nonce=nonce.lower(),
    )


def settlement_response(
    *, success: bool, payer: str | None, transaction: str, network: str, reason: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": success,
        "payer": payer,
        "transaction": transaction,
        "network": network,
    }
    if reason is not None:
        body["errorReason"] = reason
    return body


def response_header(version: int, response: Mapping[str, Any]) -> tuple[str, str]:
    """The settlement header of the version the client paid with; v1 names its network."""
    if version == 1:
        response = {**response, "network": v1_network(str(response.get("network", "")))}
        return V1_RESPONSE, encode_header(response)
    return V2_RESPONSE, encode_header(response)
