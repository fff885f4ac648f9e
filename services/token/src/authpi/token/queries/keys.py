"""Read-side SQL over the token service's own tables (issuers it learnt, its signing keys)."""

from __future__ import annotations

from authpi.eventstore.sqltext import render


class Sql:
    """Statements of one token schema, rendered once."""

    def __init__(self, schema: str) -> None:
        self.channel = f"{schema}_keys"
        self.listen = render("LISTEN {channel}", channel=self.channel)
        self.lock_issuer = "SELECT pg_advisory_xact_lock(hashtext('authpi.token.keys:' || %s))"
        self.notify = "SELECT pg_notify(%s, %s)"
        issuer_columns = (
            "id, account_id, status, available_scopes, access_token_ttl, refresh_token_ttl,"
            " id_token_ttl, session_max_age, session_idle_timeout, signing_algs, default_alg"
        )
        self.issuer = render(
            f"SELECT {issuer_columns} FROM {{schema}}.issuers_view WHERE id = %s", schema=schema
        )
        self.platform_issuer = render(
            f"INSERT INTO {{schema}}.issuers_view ({issuer_columns}, updated_at) VALUES (%s, %s,"
            " 'active', '[]'::jsonb, 1800, 604800, 1800, 604800, 43200,"
            ' \'["ES256", "EdDSA", "RS256"]\'::jsonb, \'ES256\', %s)'
            " ON CONFLICT (id) DO NOTHING",
            schema=schema,
        )
        # The stream sequence token-issuers has applied, with a fence notice on the key channel
        # (read-your-writes, caches.issuer_keys.KeyCache.reach).
        self.issuers_fence = render(
            "SELECT last_seq, pg_notify(%s, %s) FROM {schema}.checkpoints"
            " WHERE consumer = 'token-issuers' AND source = '*'",
            schema=schema,
        )
        self.issuer_ids = render("SELECT id FROM {schema}.issuers_view ORDER BY id", schema=schema)
        key_columns = "kid, issuer_id, alg, public_jwk, created_at"
        self.active_keys = render(
            f"SELECT {key_columns} FROM {{schema}}.signing_keys_view"
            " WHERE issuer_id = %s AND status = 'active' ORDER BY created_at DESC, kid",
            schema=schema,
        )
        self.all_active_keys = render(
            "SELECT issuer_id, kid, alg, created_at FROM {schema}.signing_keys_view"
            " WHERE status = 'active'",
            schema=schema,
        )
        self.secret = render(
            "SELECT wrapped_dek, ciphertext FROM {schema}.signing_key_secrets WHERE kid = %s",
            schema=schema,
        )
        self.insert_secret = render(
            "INSERT INTO {schema}.signing_key_secrets (kid, issuer_id, wrapped_dek, ciphertext)"
            " VALUES (%s, %s, %s, %s)",
            schema=schema,
        )
        self.delete_secret = render(
            "DELETE FROM {schema}.signing_key_secrets WHERE kid = %s", schema=schema
        )
