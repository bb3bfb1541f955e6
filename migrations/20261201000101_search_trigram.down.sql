DROP INDEX IF EXISTS entities_label_trgm;
DROP INDEX IF EXISTS entities_name_trgm;
-- The extension goes too, unless something else uses it by now.
DO $$
BEGIN
    DROP EXTENSION IF EXISTS pg_trgm;
EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm stays: other objects use it';
END;
$$;
