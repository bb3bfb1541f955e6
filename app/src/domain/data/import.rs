//! Importing documents: all of them in one transaction, all or nothing.
//!
//! Entities first (in file order), then relations, whose ends may be in the database or
//! anywhere in the files. Any error (a bad name, a relation whose end exists nowhere, an
//! existing item in `fail` mode, a dependency between non-ToRs, an escalation or reporting
//! cycle) is collected; if there is one, nothing is written. A dry run does the same work
//! and always rolls back, so its report says exactly what an import would change.
//!
//! Secrets are never imported: properties that look like credentials (password, token,
//! secret, ...) are dropped and counted; imported users have no password until one is set.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use super::{
    ConflictMode, Document, EntityRecord, ImportOptions, KNOWN_ENTITY_TYPES, RelationRecord,
    UnknownPolicy, parse_ref,
};
use super::{upstream_items, upstream_meetings, upstream_workflow};
use crate::domain::audit::{self, Actor};
use crate::domain::dependencies::DependencyKind;
use crate::domain::{DomainError, DomainResult, kind, rel};
use crate::graph::is_secret;
use crate::store::ident::is_valid_ident;
use crate::store::{self, EntityPatch, NewEntity, StoreError};

/// Created, updated, unchanged (existing and identical) and skipped items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub dry_run: bool,
    /// Whether the changes were committed (never on a dry run or with errors).
    pub committed: bool,
    pub mode: ConflictMode,
    pub unknown: UnknownPolicy,
    pub entities: Counts,
    pub relations: Counts,
    /// One line per change, e.g. `create tor:budget`, `update role:admin (label)`.
    pub changes: Vec<String>,
    /// Entity types this app has no pages for, with how many the files hold.
    pub unknown_entity_types: BTreeMap<String, usize>,
    /// Relation types the files use without declaring them (created with `--unknown import`).
    pub unknown_relation_types: Vec<String>,
    /// Credential-like properties left out.
    pub secrets_dropped: usize,
    /// Users created without a password (set one before they can log in).
    pub users_without_password: Vec<String>,
    /// Upstream workflow gates translated: `workflow_transition:<name>: upstream permission
    /// <p> → capability <c>` (see [`super::upstream_workflow`]).
    pub workflow_gates: Vec<String>,
    /// What could not be brought over as it was meant, each with the reason (imported
    /// without effect, or left out).
    pub not_mapped: Vec<String>,
    pub errors: Vec<String>,
}

/// Why an import could not even be tried (the database failed); everything else is in the
/// report's `errors`.
type ImportResult = DomainResult<ImportReport>;

struct Importer<'a> {
    conn: &'a mut PgConnection,
    options: ImportOptions,
    report: ImportReport,
    /// `type:name` → id, for entities seen or looked up.
    ids: HashMap<String, Option<i64>>,
    /// `type:name` of entities left out by the unknown-type policy.
    left_out: HashSet<String>,
    relation_types: HashSet<String>,
    /// `type:name` of the entities this import created.
    created: HashSet<String>,
}

/// A store error that concerns one record (reported) or the database (fatal).
fn per_record(err: StoreError) -> Result<String, DomainError> {
    match err {
        StoreError::Invalid(m) | StoreError::NotFound(m) | StoreError::Conflict(m) => Ok(m),
        StoreError::Database(e) => Err(DomainError::Database(e)),
    }
}

impl Importer<'_> {
    fn error(&mut self, message: String) {
        self.report.errors.push(message);
    }

    async fn lookup(&mut self, reference: &str) -> DomainResult<Option<i64>> {
        if let Some(id) = self.ids.get(reference) {
            return Ok(*id);
        }
        let id = match parse_ref(reference) {
            Some((entity_type, name)) if is_valid_ident(entity_type) => {
                store::find_entity(&mut *self.conn, entity_type, name)
                    .await?
                    .map(|e| e.id)
            }
            _ => None,
        };
        self.ids.insert(reference.to_owned(), id);
        Ok(id)
    }

    fn without_secrets(&mut self, properties: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        let mut kept = BTreeMap::new();
        for (key, value) in properties {
            if is_secret(key, value) {
                self.report.secrets_dropped += 1;
            } else {
                kept.insert(key.clone(), value.clone());
            }
        }
        kept
    }

    async fn entity(&mut self, record: &EntityRecord) -> DomainResult<()> {
        let reference = format!("{}:{}", record.entity_type, record.name);
        if !is_valid_ident(&record.entity_type) {
            self.error(format!(
                "entity {reference}: the type is not an identifier (a-z, 0-9, _)"
            ));
            return Ok(());
        }
        if !KNOWN_ENTITY_TYPES.contains(&record.entity_type.as_str()) {
            *self
                .report
                .unknown_entity_types
                .entry(record.entity_type.clone())
                .or_default() += 1;
            match self.options.unknown {
                UnknownPolicy::Import => {}
                UnknownPolicy::Skip => {
                    self.left_out.insert(reference);
                    self.report.entities.skipped += 1;
                    return Ok(());
                }
                UnknownPolicy::Fail => {
                    self.error(format!(
                        "entity {reference}: this app has no entity type {:?} (use --unknown import or skip)",
                        record.entity_type
                    ));
                    return Ok(());
                }
            }
        }
        let mut properties = self.without_secrets(&record.properties);
        upstream_items::adapt_properties(&record.entity_type, &mut properties);
        let mut sort_order = record.sort_order;
        if record.entity_type == kind::MINUTES_SECTION {
            let sequence = upstream_meetings::import_section(&mut properties);
            if sort_order == 0 {
                sort_order = sequence.unwrap_or(0);
            }
        }
        let existing =
            store::find_entity(&mut *self.conn, &record.entity_type, &record.name).await?;
        let properties = if record.entity_type == kind::WORKFLOW_TRANSITION
            && (existing.is_none() || self.options.mode == ConflictMode::Upsert)
        {
            let gate = upstream_workflow::gate(
                &mut *self.conn,
                &mut self.report,
                &reference,
                &record.name,
                properties,
            )
            .await?;
            match gate {
                Some(properties) => properties,
                None => {
                    self.left_out.insert(reference);
                    self.report.entities.skipped += 1;
                    return Ok(());
                }
            }
        } else {
            properties
        };
        let Some(existing) = existing else {
            let mut new = NewEntity::new(&record.entity_type, &record.name).label(&record.label);
            new.sort_order = sort_order;
            new.properties = properties;
            match store::create_entity(&mut *self.conn, &new).await {
                Ok(created) => {
                    let id = created.entity.id;
                    if !record.is_active {
                        let patch = EntityPatch {
                            is_active: Some(false),
                            ..Default::default()
                        };
                        store::update_entity(&mut *self.conn, id, &patch).await?;
                    }
                    self.ids.insert(reference.clone(), Some(id));
                    self.created.insert(reference.clone());
                    if record.entity_type == kind::RELATION_TYPE {
                        self.relation_types.insert(record.name.clone());
                    }
                    if record.entity_type == kind::USER {
                        self.report.users_without_password.push(record.name.clone());
                    }
                    self.report.entities.created += 1;
                    self.report.changes.push(format!("create {reference}"));
                }
                Err(e) => {
                    let message = per_record(e)?;
                    self.error(format!("entity {reference}: {message}"));
                }
            }
            return Ok(());
        };
        self.ids.insert(reference.clone(), Some(existing.id));
        match self.options.mode {
            ConflictMode::Skip => {
                self.report.entities.skipped += 1;
                return Ok(());
            }
            ConflictMode::Fail => {
                self.error(format!("entity {reference} already exists (mode fail)"));
                return Ok(());
            }
            ConflictMode::Upsert => {}
        }
        let current = store::properties_of(&mut *self.conn, &[existing.id])
            .await?
            .remove(&existing.id)
            .unwrap_or_default();
        let mut patch = EntityPatch::default();
        let mut what = Vec::new();
        if existing.label != record.label {
            patch.label = Some(record.label.clone());
            what.push("label".to_owned());
        }
        if existing.sort_order != sort_order {
            patch.sort_order = Some(sort_order);
            what.push("sort order".to_owned());
        }
        if existing.is_active != record.is_active {
            patch.is_active = Some(record.is_active);
            what.push("active".to_owned());
        }
        for (key, value) in properties {
            if current.get(&key) != Some(&value) {
                what.push(key.clone());
                patch.properties.insert(key, Some(value));
            }
        }
        if what.is_empty() {
            self.report.entities.unchanged += 1;
            return Ok(());
        }
        match store::update_entity(&mut *self.conn, existing.id, &patch).await {
            Ok(_) => {
                self.report.entities.updated += 1;
                self.report
                    .changes
                    .push(format!("update {reference} ({})", what.join(", ")));
            }
            Err(e) => {
                let message = per_record(e)?;
                self.error(format!("entity {reference}: {message}"));
            }
        }
        Ok(())
    }

    /// Makes sure relation type `name` exists, as the unknown policy says; false: leave the
    /// relation out (an error is recorded when the policy is `fail`).
    async fn relation_type(&mut self, name: &str, context: &str) -> DomainResult<bool> {
        if self.relation_types.contains(name) {
            return Ok(true);
        }
        if !is_valid_ident(name) {
            self.error(format!(
                "{context}: relation type {name:?} is not an identifier"
            ));
            return Ok(false);
        }
        if store::find_entity(&mut *self.conn, kind::RELATION_TYPE, name)
            .await?
            .is_some()
        {
            self.relation_types.insert(name.to_owned());
            return Ok(true);
        }
        if !self.report.unknown_relation_types.iter().any(|n| n == name) {
            self.report.unknown_relation_types.push(name.to_owned());
        }
        match self.options.unknown {
            UnknownPolicy::Import => {
                let label = name.replace('_', " ");
                let new = NewEntity::new(kind::RELATION_TYPE, name).label(&label);
                store::create_entity(&mut *self.conn, &new).await?;
                self.relation_types.insert(name.to_owned());
                self.report
                    .changes
                    .push(format!("create relation_type:{name} (used, not declared)"));
                Ok(true)
            }
            UnknownPolicy::Skip => Ok(false),
            UnknownPolicy::Fail => {
                self.error(format!("{context}: unknown relation type {name:?}"));
                Ok(false)
            }
        }
    }

    async fn relation(&mut self, record: &RelationRecord) -> DomainResult<()> {
        let Some(record) = upstream_meetings::import_relation(record) else {
            self.report.relations.skipped += 1;
            return Ok(());
        };
        let record = &record;
        let context = format!(
            "relation {} {} → {}",
            record.relation_type, record.source, record.target
        );
        if self.left_out.contains(&record.source) || self.left_out.contains(&record.target) {
            self.report.relations.skipped += 1;
            return Ok(());
        }
        if !self.relation_type(&record.relation_type, &context).await? {
            self.report.relations.skipped += 1;
            return Ok(());
        }
        let (Some(source), Some(target)) = (
            self.lookup(&record.source).await?,
            self.lookup(&record.target).await?,
        ) else {
            let missing: Vec<&str> = [&record.source, &record.target]
                .into_iter()
                .filter(|r| self.ids.get(*r).is_some_and(Option::is_none))
                .map(String::as_str)
                .collect();
            self.error(format!(
                "{context}: no entity {} in the database or the files",
                missing.join(" or ")
            ));
            return Ok(());
        };
        if DependencyKind::parse(&record.relation_type).is_some() {
            let both_tors = [&record.source, &record.target]
                .iter()
                .all(|r| parse_ref(r).is_some_and(|(t, _)| t == kind::TOR));
            if !both_tors || source == target {
                self.error(format!("{context}: a dependency joins two different ToRs"));
                return Ok(());
            }
        }
        let properties = self.without_secrets(&record.properties);
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT r.id FROM relations r JOIN entities rt ON rt.id = r.relation_type_id \
             WHERE rt.entity_type = 'relation_type' AND rt.name = $1 AND r.source_id = $2 AND r.target_id = $3",
        )
        .bind(&record.relation_type)
        .bind(source)
        .bind(target)
        .fetch_optional(&mut *self.conn)
        .await?;
        let Some(id) = existing else {
            match store::relate(
                &mut *self.conn,
                &record.relation_type,
                source,
                target,
                &properties,
            )
            .await
            {
                Ok(_) => {
                    self.report.relations.created += 1;
                    self.report.changes.push(format!(
                        "create {} {} → {}",
                        record.relation_type, record.source, record.target
                    ));
                }
                Err(e) => {
                    let message = per_record(e)?;
                    self.error(format!("{context}: {message}"));
                }
            }
            return Ok(());
        };
        match self.options.mode {
            ConflictMode::Skip => self.report.relations.skipped += 1,
            ConflictMode::Fail => self.error(format!("{context} already exists (mode fail)")),
            ConflictMode::Upsert => {
                let current = store::relation_properties(&mut *self.conn, id).await?;
                let changed: Vec<(String, Value)> = properties
                    .into_iter()
                    .filter(|(k, v)| current.get(k) != Some(v))
                    .collect();
                if changed.is_empty() {
                    self.report.relations.unchanged += 1;
                    return Ok(());
                }
                let keys: Vec<&str> = changed.iter().map(|(k, _)| k.as_str()).collect();
                self.report.changes.push(format!(
                    "update {} {} → {} ({})",
                    record.relation_type,
                    record.source,
                    record.target,
                    keys.join(", ")
                ));
                for (key, value) in &changed {
                    if let Err(e) =
                        store::set_relation_property(&mut *self.conn, id, key, value).await
                    {
                        let message = per_record(e)?;
                        self.error(format!("{context}: {message}"));
                    }
                }
                self.report.relations.updated += 1;
            }
        }
        Ok(())
    }

    /// Escalations and the reporting hierarchy must not go round in circles.
    async fn check_cycles(&mut self) -> DomainResult<()> {
        for relation_type in [rel::ESCALATES_TO, rel::REPORTS_TO] {
            let cyclic: Vec<String> = sqlx::query_scalar(
                "WITH RECURSIVE edges(s, t) AS ( \
                     SELECT r.source_id, r.target_id FROM relations r \
                     JOIN entities rt ON rt.id = r.relation_type_id AND rt.entity_type = 'relation_type' AND rt.name = $1), \
                   walk(start, id) AS ( \
                     SELECT s, t FROM edges \
                   UNION \
                     SELECT w.start, e.t FROM walk w JOIN edges e ON e.s = w.id \
                     WHERE w.id <> w.start) \
                 SELECT DISTINCT e.entity_type || ':' || e.name FROM walk w JOIN entities e ON e.id = w.start \
                 WHERE w.id = w.start ORDER BY 1",
            )
            .bind(relation_type)
            .fetch_all(&mut *self.conn)
            .await?;
            if !cyclic.is_empty() {
                self.error(format!(
                    "{relation_type} would go round in a circle through {}",
                    cyclic.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// Imports `documents` (in order) into `pool` in one transaction; see the module docs.
pub async fn import(
    pool: &PgPool,
    actor: &Actor,
    documents: &[Document],
    options: ImportOptions,
) -> ImportResult {
    let mut tx = pool.begin().await?;
    // One import at a time: two imports of overlapping files would race on existence checks.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('ahlt.data.import'))")
        .execute(&mut *tx)
        .await?;
    let mut importer = Importer {
        conn: &mut tx,
        options,
        report: ImportReport {
            dry_run: options.dry_run,
            mode: options.mode,
            unknown: options.unknown,
            ..Default::default()
        },
        ids: HashMap::new(),
        left_out: HashSet::new(),
        relation_types: HashSet::new(),
        created: HashSet::new(),
    };
    for document in documents {
        for record in &document.entities {
            importer.entity(record).await?;
        }
    }
    upstream_meetings::report_untranslated(&mut importer.report, documents);
    upstream_items::link_authors(
        &mut *importer.conn,
        &mut importer.report,
        documents,
        &importer.created,
    )
    .await?;
    for document in documents {
        for record in &document.relations {
            importer.relation(record).await?;
        }
    }
    upstream_items::derive_proposal_statuses(
        &mut *importer.conn,
        &mut importer.report,
        documents,
        &importer.left_out,
    )
    .await?;
    importer.check_cycles().await?;
    let mut report = importer.report;
    if report.errors.is_empty() && !options.dry_run {
        audit::record(
            &mut tx,
            actor,
            "data.import",
            None,
            json!({"mode": options.mode, "entities": report.entities, "relations": report.relations}),
        )
        .await?;
        tx.commit().await?;
        report.committed = true;
    } else {
        tx.rollback().await?;
    }
    Ok(report)
}
