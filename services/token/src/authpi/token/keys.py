"""Key material of the three published algorithms (idp-api.md 13.1): generation, public JWKs,
envelope encryption of the private key at rest (a per-key data key sealed with AES-GCM, wrapped
by the KEK; DESIGN.md 6) and JWT signing."""

from __future__ import annotations

from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from authpi.crypto.envelope import Kek, new_key, seal, unseal

ALGORITHMS = ("ES256", "EdDSA", "RS256")
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


def wrap_private(kek: Kek, kid: str, key: PrivateKey) -> tuple[str, str]:
    """(wrapped data key, ciphertext of the PKCS#8 private key), both bound to the kid."""
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    dek = new_key()
    return kek.wrap(dek, _context(kid)), seal(dek, der, kid.encode())


def unwrap_private(kek: Kek, kid: str, wrapped_dek: str, ciphertext: str) -> PrivateKey:
    dek = kek.unwrap(wrapped_dek, _context(kid))
    key = serialization.load_der_private_key(unseal(dek, ciphertext, kid.encode()), password=None)
    if not isinstance(
        key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise ValueError("unexpected private key type")
    return key


def sign_jwt(
    key: PrivateKey, kid: str, alg: str, claims: dict[str, Any], typ: str | None = None
) -> str:
    """A compact JWS. `typ` is `at+jwt` on access tokens and absent otherwise (idp-api.md 11.0):
    a `typ: None` header tells PyJWT to leave out its default `typ: JWT`."""
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": typ})
