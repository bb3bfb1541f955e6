-- The EAV core: every domain object (user, role, permission, ToR, function, relation type,
-- nav item, ...) is an entity; facts about it are properties; links are typed relations.

CREATE TABLE entities (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity_type TEXT        NOT NULL CHECK (entity_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    name        TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    label       TEXT        NOT NULL DEFAULT '' CHECK (char_length(label) <= 500),
    sort_order  INTEGER     NOT NULL DEFAULT 0,
    is_active   BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (entity_type, name)
);
CREATE INDEX entities_by_type ON entities (entity_type, sort_order, id);

CREATE TABLE entity_properties (
    entity_id  BIGINT      NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    key        TEXT        NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    value      JSONB       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_id, key)
);

-- Relation types are entities of type 'relation_type' (checked by trigger below).
CREATE TABLE relations (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relation_type_id BIGINT      NOT NULL REFERENCES entities (id) ON DELETE RESTRICT,
    source_id        BIGINT      NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    target_id        BIGINT      NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (relation_type_id, source_id, target_id)
);
CREATE INDEX relations_by_source ON relations (source_id, relation_type_id);
CREATE INDEX relations_by_target ON relations (target_id, relation_type_id);

CREATE TABLE relation_properties (
    relation_id BIGINT      NOT NULL REFERENCES relations (id) ON DELETE CASCADE,
    key         TEXT        NOT NULL CHECK (key ~ '^[a-z][a-z0-9_]{0,62}$'),
    value       JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (relation_id, key)
);

CREATE FUNCTION relations_check_type() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM entities
                   WHERE id = NEW.relation_type_id AND entity_type = 'relation_type') THEN
        RAISE EXCEPTION 'entity % is not a relation_type', NEW.relation_type_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER relations_type_is_relation_type
    BEFORE INSERT OR UPDATE OF relation_type_id ON relations
    FOR EACH ROW EXECUTE FUNCTION relations_check_type();
