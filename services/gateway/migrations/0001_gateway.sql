-- Idempotency keys (core-api.md 2.4): ephemeral, expire 24 h after first use (DESIGN.md 3).
-- One row per (account, key). `owner` identifies the attempt that holds an in-progress row, so
-- that only that attempt completes or releases it. Stored bodies are AES-GCM sealed: a replay
-- may carry a one-time secret (core-api.md 2.10).
CREATE TABLE idempotency_keys (
    scope_id     text NOT NULL,
    key          text NOT NULL,
    owner        uuid NOT NULL,
    fingerprint  text NOT NULL,
    state        text NOT NULL CHECK (state IN ('in_progress', 'completed')),
    status       integer,
    headers      jsonb,
    body         text,
    lease_until  bigint NOT NULL,
    expires_at   bigint NOT NULL,
    created_at   bigint NOT NULL,
    PRIMARY KEY (scope_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
