"""The hosted login portal (idp-api.md 12.6): server-rendered pages under `/{issuer_id}` for
sign-in, sign-up, consent, email verification, password reset and login links."""
