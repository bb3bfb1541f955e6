-- `q=` search (`name ILIKE '%q%' OR label ILIKE '%q%'`) scanned every entity. Trigram GIN
-- indexes answer it from the index. pg_trgm ships with PostgreSQL (contrib) and is a trusted
-- extension (the database owner may create it); where it is missing or not allowed, search
-- keeps working without the indexes, only slower, and the migration says so.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        RAISE NOTICE 'pg_trgm is not available: entity search runs without trigram indexes';
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'not allowed to create pg_trgm: entity search runs without trigram indexes';
        RETURN;
    END;
    CREATE INDEX entities_name_trgm ON entities USING gin (name gin_trgm_ops);
    CREATE INDEX entities_label_trgm ON entities USING gin (label gin_trgm_ops);
END;
$$;
