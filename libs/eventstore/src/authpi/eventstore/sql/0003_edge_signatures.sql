-- Gateway signatures of the writes this service's replicas have taken (authpi.web.edge): a
-- forwarded write is taken once by the whole service, not once per replica. Rows older than
-- twice a signature's validity are pruned as new ones come in.
CREATE TABLE edge_signatures (
    mac     text PRIMARY KEY,
    seen_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX edge_signatures_seen_at ON edge_signatures (seen_at);
