DROP TRIGGER relation_properties_graph_notify ON relation_properties;
DROP TRIGGER relations_graph_notify ON relations;
DROP TRIGGER entity_properties_graph_notify ON entity_properties;
DROP TRIGGER entities_graph_notify ON entities;
DROP FUNCTION ahlt_graph_notify_relation_property();
DROP FUNCTION ahlt_graph_notify_relation();
DROP FUNCTION ahlt_graph_notify_entity_property();
DROP FUNCTION ahlt_graph_notify_entity();
