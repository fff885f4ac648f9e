-- Team notes (core-api.md 3.20; inline projection of the note streams). Lists read pinned notes
-- first, then newest first (the compound cursor `pinned:timestamp`, with the id for ties).
-- Mentions and references are the parsed content, as the API shows them; the GIN indexes serve
-- the `mentions_user_id` filter and the backlinks lookup. A deleted note's row is removed.
CREATE TABLE notes_view (
    id           text PRIMARY KEY,
    account_id   text    NOT NULL,
    issuer_id    text,
    subject_type text    NOT NULL,
    subject_id   text    NOT NULL,
    content      text    NOT NULL,
    pinned       boolean NOT NULL,
    created_by   text    NOT NULL,
    updated_by   text,
    mentions     jsonb   NOT NULL DEFAULT '[]',
    refs         jsonb   NOT NULL DEFAULT '[]',
    version      integer NOT NULL,
    created_at   bigint  NOT NULL,
    updated_at   bigint
);
CREATE INDEX notes_view_account
    ON notes_view (account_id, pinned DESC, created_at DESC, id DESC);
CREATE INDEX notes_view_subject ON notes_view (account_id, subject_type, subject_id);
CREATE INDEX notes_view_mentions ON notes_view USING gin (mentions jsonb_path_ops);
CREATE INDEX notes_view_refs ON notes_view USING gin (refs jsonb_path_ops);
