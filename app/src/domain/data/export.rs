//! Exporting everything in upstream's format, from one snapshot. Password hashes live
//! outside the EAV tables and are never read here; credential-like properties are left out
//! as well. Workflow transitions also name an upstream permission (see
//! [`super::upstream_workflow`]) so upstream can gate them.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::PgPool;

use super::{
    Document, EntityRecord, RelationRecord, upstream_items, upstream_meetings, upstream_workflow,
};
use crate::domain::{DomainResult, kind};
use crate::graph::is_secret;

fn public(properties: Value) -> BTreeMap<String, Value> {
    match properties {
        Value::Object(map) => map.into_iter().filter(|(k, v)| !is_secret(k, v)).collect(),
        _ => BTreeMap::new(),
    }
}

/// Every entity (by id) and relation (by id).
pub async fn export(pool: &PgPool) -> DomainResult<Document> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let entities: Vec<(String, String, String, i32, bool, Value)> = sqlx::query_as(
        "SELECT e.entity_type, e.name, e.label, e.sort_order, e.is_active, \
                COALESCE((SELECT jsonb_object_agg(p.key, p.value) FROM entity_properties p \
                          WHERE p.entity_id = e.id), '{}'::jsonb) \
         FROM entities e ORDER BY e.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let relations: Vec<(String, String, String, Value)> = sqlx::query_as(
        "SELECT rt.name, s.entity_type || ':' || s.name, t.entity_type || ':' || t.name, \
                COALESCE((SELECT jsonb_object_agg(p.key, p.value) FROM relation_properties p \
                          WHERE p.relation_id = r.id), '{}'::jsonb) \
         FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
         JOIN entities s ON s.id = r.source_id JOIN entities t ON t.id = r.target_id \
         ORDER BY r.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Document {
        entities: entities
            .into_iter()
            .map(
                |(entity_type, name, label, sort_order, is_active, properties)| {
                    let mut properties = public(properties);
                    if entity_type == kind::WORKFLOW_TRANSITION {
                        upstream_workflow::add_permission(&mut properties);
                    }
                    upstream_items::add_rejection_reason(&entity_type, &mut properties);
                    upstream_items::export_proposal_status(&entity_type, &mut properties);
                    if entity_type == kind::MINUTES_SECTION {
                        upstream_meetings::export_section(&mut properties, sort_order);
                    }
                    EntityRecord {
                        id: None,
                        entity_type,
                        name,
                        label,
                        sort_order,
                        properties,
                        is_active,
                    }
                },
            )
            .collect(),
        relations: upstream_meetings::export_relations(
            relations
                .into_iter()
                .map(
                    |(relation_type, source, target, properties)| RelationRecord {
                        relation_type,
                        source,
                        target,
                        properties: public(properties),
                    },
                )
                .collect(),
        ),
    })
}
