"""Read-side SQL over the token service's own tables (issuers it learnt, its signing keys)."""

from __future__ import annotations

from psycopg import sql


class Sql:
    """Statements of one token schema, rendered once."""

    def __init__(self, schema: str) -> None:
        q = sql.Identifier(schema)

        def render(text: str) -> str:
            return sql.SQL(text).format(q).as_string()

        self.channel = f"{schema}_keys"
        self.lock_issuer = "SELECT pg_advisory_xact_lock(hashtext('authpi.token.keys:' || %s))"
        self.notify = "SELECT pg_notify(%s, %s)"
        issuer_columns = (
            "id, account_id, status, available_scopes, access_token_ttl, refresh_token_ttl,"
            " id_token_ttl, session_max_age, session_idle_timeout, signing_algs, default_alg"
        )
        self.issuer = render(f"SELECT {issuer_columns} FROM {{}}.issuers_view WHERE id = %s")
        self.platform_issuer = render(
            f"INSERT INTO {{}}.issuers_view ({issuer_columns}, updated_at) VALUES (%s, %s,"
            " 'active', '[]'::jsonb, 1800, 604800, 1800, 604800, 43200,"
            ' \'["ES256", "EdDSA", "RS256"]\'::jsonb, \'ES256\', %s)'
            " ON CONFLICT (id) DO NOTHING"
        )
        # The stream sequence token-issuers has applied, with a fence notice on the key channel
        # (read-your-writes, caches.issuer_keys.KeyCache.reach).
        self.issuers_fence = render(
            "SELECT last_seq, pg_notify(%s, %s) FROM {}.checkpoints"
            " WHERE consumer = 'token-issuers' AND source = '*'"
        )
        self.issuer_ids = render("SELECT id FROM {}.issuers_view ORDER BY id")
        key_columns = "kid, issuer_id, alg, public_jwk, created_at"
        self.active_keys = render(
            f"SELECT {key_columns} FROM {{}}.signing_keys_view"
            " WHERE issuer_id = %s AND status = 'active' ORDER BY created_at DESC, kid"
        )
        self.all_active_keys = render(
            "SELECT issuer_id, kid, alg, created_at FROM {}.signing_keys_view"
            " WHERE status = 'active'"
        )
        self.secret = render(
            "SELECT wrapped_dek, ciphertext FROM {}.signing_key_secrets WHERE kid = %s"
        )
        self.insert_secret = render(
            "INSERT INTO {}.signing_key_secrets (kid, issuer_id, wrapped_dek, ciphertext)"
            " VALUES (%s, %s, %s, %s)"
        )
        self.delete_secret = render("DELETE FROM {}.signing_key_secrets WHERE kid = %s")
