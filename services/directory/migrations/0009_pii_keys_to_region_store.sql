-- The per-user data keys move to the region's PII key store (schema `<namespace>_pii`, created by
-- its own migrations, which the host runs before the services'): the keys are shared by the
-- region's services (the token service reads them to open the sealed PII it projects), while
-- the directory stays the only one to create and destroy them. Existing keys are copied as they
-- are (same wrapping, same context), then the directory's own table goes. The host names the
-- store of its region in the session setting `authpi.pii_store`; without it, the store of the
-- region `default` next to this schema.
DO $move$
DECLARE
    own    text := current_schema();
    region text := coalesce(
        nullif(current_setting('authpi.pii_store', true), ''),
        left(current_schema(), length(current_schema()) - length('_directory')) || '_pii'
    );
BEGIN
    IF right(own, length('_directory')) <> '_directory' THEN
        RAISE EXCEPTION 'not a directory schema: %', own;
    END IF;
    IF to_regclass(format('%I.pii_keys', region)) IS NULL THEN
        RAISE EXCEPTION 'the PII key store %.pii_keys must be migrated first', region;
    END IF;
    EXECUTE format(
        'INSERT INTO %I.pii_keys (subject_id, wrapped_key, created_at)'
        ' SELECT subject_id, wrapped_key, created_at FROM %I.pii_keys'
        ' ON CONFLICT (subject_id) DO NOTHING',
        region, own
    );
END
$move$;

DROP TABLE pii_keys;
