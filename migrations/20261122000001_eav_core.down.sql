DROP TABLE relation_properties;
DROP TABLE relations;
DROP FUNCTION relations_check_type();
DROP TABLE entity_properties;
DROP TABLE entities;
