"""Key material of the three published algorithms (idp-api.md 13.1): generation, public JWKs,
envelope encryption of the private key at rest (a per-key data key sealed with AES-GCM, wrapped
by the KEK; DESIGN.md 6) and JWT signing."""

from __future__ import annotations

import base64
import re
import sys
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from authpi.crypto.envelope import Kek, new_key, seal, unseal

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
_PUBLIC_FIELDS = {
    "EC": ("kty", "crv", "x", "y"),
    "OKP": ("kty", "crv", "x"),
    "RSA": ("kty", "n", "e"),
}


def generate(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


def public_jwk(key: PrivateKey, kid: str, alg: str) -> dict[str, Any]:
    """The JWKS entry (idp-api.md 13.2): public parameters, kid, alg, use, ext; nothing else."""
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        raw = ECAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ed25519.Ed25519PublicKey):
        raw = OKPAlgorithm.to_jwk(public, as_dict=True)
    else:
        raw = RSAAlgorithm.to_jwk(public, as_dict=True)
    jwk = {name: raw[name] for name in _PUBLIC_FIELDS[raw["kty"]]}
    return {**jwk, "alg": alg, "use": "sig", "kid": kid, "ext": True}


def _context(kid: str) -> str:
    return f"authpi.token.signing-key:{kid}"


def private_der(key: PrivateKey) -> bytes:
    """The private key as PKCS#8 DER."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_der(der: bytes) -> PrivateKey:
    """A private key from `private_der` of a key the token service generated. An RSA key is not
    checked for consistency again: that costs about as much as generating it, and every key
    cache loads every issuer's key."""
    key = serialization.load_der_private_key(
        der, password=None, unsafe_skip_rsa_key_validation=True
    )
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise ValueError("unexpected private key type")
    return key


def wrap_private(kek: Kek, kid: str, key: PrivateKey) -> tuple[str, str]:
    """(wrapped data key, ciphertext of the PKCS#8 private key), both bound to the kid."""
    dek = new_key()
    return kek.wrap(dek, _context(kid)), seal(dek, private_der(key), kid.encode())


def unwrap_private(kek: Kek, kid: str, wrapped_dek: str, ciphertext: str) -> PrivateKey:
    """The private key sealed by `wrap_private` (AES-GCM under the KEK proves it unchanged)."""
    dek = kek.unwrap(wrapped_dek, _context(kid))
    return load_private_der(unseal(dek, ciphertext, kid.encode()))


_HEADER_CACHE: dict[tuple[str, str, str | None], bytes] = {}
_json = msgspec.json.Encoder()
_ECDSA = ec.ECDSA(hashes.SHA256())
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _header(kid: str, alg: str, typ: str | None) -> bytes:
    """The encoded JOSE header, built once per (kid, alg, typ)."""
    cached = _HEADER_CACHE.get((kid, alg, typ))
    if cached is None:
        header = {"alg": alg, "kid": kid} | ({"typ": typ} if typ else {})
        cached = _HEADER_CACHE[(kid, alg, typ)] = _b64(_json.encode(header))
    return cached


def sign_jwt(
    key: PrivateKey, kid: str, alg: str, claims: dict[str, Any], typ: str | None = None
) -> str:
    """A compact JWS (RFC 7515). `typ` is `at+jwt` on access tokens and absent otherwise
    (idp-api.md 11.0). This is the token endpoint's hot path, so it is built here rather than by
    PyJWT (which re-encodes the header and walks its algorithm registry per call); PyJWT still
    verifies every form in the tests. ES256 signatures are the raw r || s of RFC 7518 3.4."""
    signing_input = _header(kid, alg, typ) + b"." + _b64(_json.encode(claims))
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, _ECDSA))  # type: ignore[call-arg, union-attr]
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg == "EdDSA":
        signature = key.sign(signing_input)  # type: ignore[call-arg]
    elif alg == "RS256":
        signature = key.sign(signing_input, _PKCS1, _SHA256)  # type: ignore[call-arg]
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    return (signing_input + b"." + _b64(signature)).decode("ascii")


_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_decode_json = msgspec.json.Decoder()
_HEADERS_SEEN: dict[str, dict[str, Any]] = {}  # encoded header -> header, known kids only


def _unb64(segment: str) -> bytes:
    """Strict base64url without padding (RFC 7515 2): any other character is refused."""
    if len(segment) % 4 == 1 or not _B64URL.fullmatch(segment):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str, what: str) -> dict[str, Any]:
    """A base64url segment holding a JSON object; ValueError for anything else, a nesting too
    deep for the decoder included (an unsigned segment is anyone's text)."""
    try:
        value = _decode_json.decode(_unb64(segment))
    except RecursionError:
        raise ValueError(f"the {what} is nested too deep") from None
    if not isinstance(value, dict):
        raise ValueError(f"the {what} is not an object")
    return value  # type: ignore[return-value]


class ParsedJwt(NamedTuple):
    """A compact JWS split and decoded, its `kid` one of the keys and its `alg` that key's, its
    signature not yet checked (`signature_holds`)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    key: PyJWK
    signing_input: bytes
    signature: bytes


def parse_jwt(token: str, keys: Mapping[str, PyJWK]) -> ParsedJwt:
    """The token's parts, its header's key found among `keys`; ValueError when it is not a
    compact JWS of one of them. The signature is NOT checked: `signature_holds` does that."""
    head, dot, rest = token.partition(".")
    body, dot2, sig = rest.partition(".")
    if not dot or not dot2:
        raise ValueError("not a compact JWS")
    header = _HEADERS_SEEN.get(head)
    if header is None:
        header = _json_object(head, "header")
    key = keys.get(str(header.get("kid")))  # type: ignore[union-attr]
    if key is None or header.get("alg") != key.algorithm_name:  # type: ignore[union-attr]
        raise ValueError("unknown key or algorithm")
    if head not in _HEADERS_SEEN and len(_HEADERS_SEEN) < 1024:
        _HEADERS_SEEN[head] = header  # type: ignore[assignment]
    signature = _unb64(sig)
    claims = _json_object(body, "claims")
    signing_input = token[: len(head) + 1 + len(body)].encode("ascii")
    return ParsedJwt(header, claims, key, signing_input, signature)  # type: ignore[arg-type]


def signature_holds(parsed: ParsedJwt) -> bool:
    """Whether the parsed token's signature holds with its key."""
    key, signature, signing_input = parsed.key, parsed.signature, parsed.signing_input
    public: Any = key.key
    try:
        if key.algorithm_name == "ES256":
            if len(signature) != 64:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            public.verify(der, signing_input, _ECDSA)
        elif key.algorithm_name == "EdDSA":
            public.verify(signature, signing_input)
        elif key.algorithm_name == "RS256":
            public.verify(signature, signing_input, _PKCS1, _SHA256)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def verify_jwt(token: str, keys: Mapping[str, PyJWK]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a compact JWS whose `kid` names one of `keys`, whose `alg` is that
    key's and whose signature holds; ValueError otherwise. It checks no claim. This is the
    refresh grant's hot path, so it is done here over the cached keys rather than by PyJWT
    (which decodes and validates every segment character by character in Python); the
    decoded header of each known key is remembered, so a token costs one JSON decode, one
    base64 decode of its claims and the signature check."""
    parsed = parse_jwt(token, keys)
    if not signature_holds(parsed):
        raise ValueError("bad signature")
    return parsed.header, parsed.claims


LENGTH_BYTES = 4  # the big-endian length before each key `serve_rsa_keys` writes


def serve_rsa_keys() -> None:
    """The key child of authpi.token.signing.keygen: for each line read, a new RSA key, written
    as its length and its PKCS#8 DER. It ends at the end of its input."""
    out = sys.stdout.buffer
    while sys.stdin.buffer.readline():
        der = private_der(generate("RS256"))
        out.write(len(der).to_bytes(LENGTH_BYTES, "big") + der)
        out.flush()


if __name__ == "__main__":
    serve_rsa_keys()
