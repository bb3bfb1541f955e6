-- Live graph sync: every committed change to the EAV tables notifies channel `ahlt_graph`
-- with the object it touched. NOTIFY is transactional (delivered on commit, never for a
-- rollback) and merges identical payloads within a transaction.
--   e:<entity id>                  an entity or one of its properties changed
--   r:<relation id>:<source id>    a relation or one of its properties changed
-- The source id lets a deleted relationship be found through its (indexed) source node.

CREATE FUNCTION ahlt_graph_notify_entity() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ahlt_graph', 'e:' || OLD.id);
    ELSE
        PERFORM pg_notify('ahlt_graph', 'e:' || NEW.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION ahlt_graph_notify_entity_property() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ahlt_graph', 'e:' || OLD.entity_id);
    ELSE
        PERFORM pg_notify('ahlt_graph', 'e:' || NEW.entity_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION ahlt_graph_notify_relation() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ahlt_graph', 'r:' || OLD.id || ':' || OLD.source_id);
    ELSE
        PERFORM pg_notify('ahlt_graph', 'r:' || NEW.id || ':' || NEW.source_id);
    END IF;
    RETURN NULL;
END;
$$;

-- A property row of a relation deleted in the same statement finds no relation: the
-- relation's own trigger reports that change.
CREATE FUNCTION ahlt_graph_notify_relation_property() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rel_id BIGINT;
    src_id BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        rel_id := OLD.relation_id;
    ELSE
        rel_id := NEW.relation_id;
    END IF;
    SELECT source_id INTO src_id FROM relations WHERE id = rel_id;
    IF FOUND THEN
        PERFORM pg_notify('ahlt_graph', 'r:' || rel_id || ':' || src_id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER entities_graph_notify
    AFTER INSERT OR UPDATE OR DELETE ON entities
    FOR EACH ROW EXECUTE FUNCTION ahlt_graph_notify_entity();
CREATE TRIGGER entity_properties_graph_notify
    AFTER INSERT OR UPDATE OR DELETE ON entity_properties
    FOR EACH ROW EXECUTE FUNCTION ahlt_graph_notify_entity_property();
CREATE TRIGGER relations_graph_notify
    AFTER INSERT OR UPDATE OR DELETE ON relations
    FOR EACH ROW EXECUTE FUNCTION ahlt_graph_notify_relation();
CREATE TRIGGER relation_properties_graph_notify
    AFTER INSERT OR UPDATE OR DELETE ON relation_properties
    FOR EACH ROW EXECUTE FUNCTION ahlt_graph_notify_relation_property();
