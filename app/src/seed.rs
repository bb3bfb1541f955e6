//! The base seed (`ahlt migrate`) and the optional demo data (`ahlt seed-demo`).
//!
//! Both only add what is missing: running them again changes nothing, and they never undo an
//! administrator's edits (a built-in role's permissions are set only when the role is created,
//! except `admin`, which by definition holds every permission).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};

use crate::auth::password;
use crate::domain::audit::{self, Actor};
use crate::domain::tors::{self, NewFunction, NewTor};
use crate::domain::users::{self, NewUser};
use crate::domain::{Capability, DomainError, DomainResult, kind, perm, rel, role};
use crate::store::{self, NewEntity};

mod demo_pipeline;

/// What a seed run created.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub created: Vec<String>,
    /// Set when the admin user was created with a generated password; show it once.
    pub generated_admin_password: Option<String>,
}

impl SeedReport {
    pub fn changed(&self) -> bool {
        !self.created.is_empty()
    }
}

/// Returns the id of the entity, creating it (with `props`) when missing.
async fn ensure(
    conn: &mut PgConnection,
    report: &mut SeedReport,
    entity_type: &str,
    name: &str,
    label: &str,
    sort_order: i32,
    props: &[(&str, Value)],
) -> DomainResult<(i64, bool)> {
    if let Some(existing) = store::find_entity(&mut *conn, entity_type, name).await? {
        return Ok((existing.id, false));
    }
    let mut new = NewEntity::new(entity_type, name).label(label);
    new.sort_order = sort_order;
    for (k, v) in props {
        new.properties.insert((*k).into(), v.clone());
    }
    let created = store::create_entity(conn, &new).await?;
    report.created.push(format!("{entity_type}:{name}"));
    Ok((created.entity.id, true))
}

async fn link(
    conn: &mut PgConnection,
    report: &mut SeedReport,
    relation: &str,
    source: i64,
    target: i64,
) -> DomainResult<()> {
    let type_id = store::relation_type_id(&mut *conn, relation).await?;
    let inserted = sqlx::query(
        "INSERT INTO relations (relation_type_id, source_id, target_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(type_id)
    .bind(source)
    .bind(target)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted > 0 {
        report
            .created
            .push(format!("{relation}:{source}->{target}"));
    }
    Ok(())
}

/// Installs relation types, permissions, roles, nav items and the `admin` user.
/// `admin_password` is used only when the admin user does not exist yet; when it is `None`, a
/// password is generated and returned in the report.
pub async fn base(pool: &PgPool, admin_password: Option<&str>) -> DomainResult<SeedReport> {
    let mut report = SeedReport::default();
    let mut tx = pool.begin().await?;
    // Two `ahlt migrate` runs at once must not race on the same inserts.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('ahlt.seed.base'))")
        .execute(&mut *tx)
        .await?;

    for (i, (name, label)) in rel::ALL.iter().enumerate() {
        ensure(
            &mut tx,
            &mut report,
            kind::RELATION_TYPE,
            name,
            label,
            i as i32,
            &[],
        )
        .await?;
    }

    let mut permission_ids = Vec::new();
    for (i, (name, label)) in perm::ALL.iter().enumerate() {
        permission_ids.push((
            *name,
            ensure(
                &mut tx,
                &mut report,
                kind::PERMISSION,
                name,
                label,
                i as i32,
                &[],
            )
            .await?
            .0,
        ));
    }
    for (i, cap) in Capability::ALL.iter().enumerate() {
        let id = ensure(
            &mut tx,
            &mut report,
            kind::PERMISSION,
            cap.as_str(),
            cap.description(),
            100 + i as i32,
            &[],
        )
        .await?
        .0;
        permission_ids.push((cap.as_str(), id));
    }
    let pid = |name: &str| {
        permission_ids
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
            .expect("seeded above")
    };

    let (viewer, viewer_new) = ensure(
        &mut tx,
        &mut report,
        kind::ROLE,
        role::VIEWER,
        "Viewer",
        3,
        &[],
    )
    .await?;
    let (editor, editor_new) = ensure(
        &mut tx,
        &mut report,
        kind::ROLE,
        role::EDITOR,
        "Editor",
        2,
        &[],
    )
    .await?;
    let (admin_role, admin_new) = ensure(
        &mut tx,
        &mut report,
        kind::ROLE,
        role::ADMIN,
        "Administrator",
        1,
        &[],
    )
    .await?;
    if viewer_new {
        for p in [
            perm::TORS_VIEW,
            perm::ENTITIES_VIEW,
            Capability::ViewTor.as_str(),
        ] {
            link(&mut tx, &mut report, rel::HAS_PERMISSION, viewer, pid(p)).await?;
        }
    }
    if editor_new {
        link(&mut tx, &mut report, rel::INHERITS_ROLE, editor, viewer).await?;
        for p in [
            perm::TORS_MANAGE,
            perm::USERS_VIEW,
            Capability::EditTor.as_str(),
            Capability::ManageMembers.as_str(),
        ] {
            link(&mut tx, &mut report, rel::HAS_PERMISSION, editor, pid(p)).await?;
        }
    }
    if admin_new {
        link(&mut tx, &mut report, rel::INHERITS_ROLE, admin_role, editor).await?;
    }
    for (_, id) in &permission_ids {
        link(&mut tx, &mut report, rel::HAS_PERMISSION, admin_role, *id).await?;
    }

    report
        .created
        .extend(crate::domain::pipeline::workflow::seed(&mut tx).await?);

    let nav: [(&str, &str, &str, Option<&str>); 10] = [
        ("dashboard", "Dashboard", "/", None),
        ("tors", "ToRs", "/tors", Some(perm::TORS_VIEW)),
        (
            "governance",
            "Governance map",
            "/governance",
            Some(perm::TORS_VIEW),
        ),
        ("outlook", "Outlook", "/tors/outlook", Some(perm::TORS_VIEW)),
        (
            "workflow",
            "Workflow",
            "/workflow",
            Some(perm::WORKFLOW_MANAGE),
        ),
        (
            "entities",
            "Entities",
            "/entities",
            Some(perm::ENTITIES_VIEW),
        ),
        ("users", "Users", "/users", Some(perm::USERS_VIEW)),
        ("roles", "Roles", "/roles", Some(perm::ROLES_MANAGE)),
        ("audit", "Audit log", "/audit", Some(perm::AUDIT_VIEW)),
        ("data", "Data", "/admin/data", Some(perm::DATA_MANAGE)),
    ];
    for (i, (name, label, path, permission)) in nav.iter().enumerate() {
        let mut props = vec![("path", json!(path))];
        if let Some(p) = permission {
            props.push(("permission", json!(p)));
        }
        ensure(
            &mut tx,
            &mut report,
            kind::NAV_ITEM,
            name,
            label,
            i as i32,
            &props,
        )
        .await?;
    }

    if store::find_entity(&mut *tx, kind::USER, "admin")
        .await?
        .is_none()
    {
        let password = match admin_password {
            Some(p) => p.to_owned(),
            None => {
                let generated = password::generate();
                report.generated_admin_password = Some(generated.clone());
                generated
            }
        };
        let new = NewUser {
            username: "admin".into(),
            display_name: "Administrator".into(),
            password,
            roles: vec![role::ADMIN.into()],
            ..Default::default()
        };
        users::create(&mut tx, &Actor::system(), &new)
            .await
            .map_err(|e| match e {
                DomainError::Invalid(m) => DomainError::Invalid(format!("ADMIN_PASSWORD: {m}")),
                other => other,
            })?;
        report.created.push("user:admin".into());
    }

    if report.changed() {
        audit::record(
            &mut tx,
            &Actor::system(),
            "seed.base",
            None,
            json!({"created": report.created.len()}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Demo ToRs, functions and users. Demo users share one password, returned when they are created.
pub async fn demo(pool: &PgPool) -> DomainResult<SeedReport> {
    let mut report = SeedReport::default();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('ahlt.seed.demo'))")
        .execute(&mut *tx)
        .await?;
    let actor = Actor::system();
    let demo_password = password::generate();

    let people = [
        ("alice", "Alice Archer", role::EDITOR),
        ("bob", "Bob Baker", role::VIEWER),
        ("carol", "Carol Chen", role::VIEWER),
        ("dave", "Dave Diaz", role::VIEWER),
    ];
    let mut user_ids = Vec::new();
    for (username, display, role_name) in people {
        let id = match users::find_by_username(&mut *tx, username).await? {
            Some(u) => u.id,
            None => {
                let new = NewUser {
                    username: username.into(),
                    display_name: display.into(),
                    email: Some(format!("{username}@example.org")),
                    password: demo_password.clone(),
                    roles: vec![role_name.into()],
                };
                report.created.push(format!("user:{username}"));
                users::create(&mut tx, &actor, &new).await?.id
            }
        };
        user_ids.push(id);
    }
    if report.created.iter().any(|c| c.starts_with("user:")) {
        report.generated_admin_password = Some(demo_password);
    }

    use Capability::*;
    // (slug, label, capabilities, indexes of the holders in `people`)
    type FunctionSpec = (
        &'static str,
        &'static str,
        &'static [Capability],
        &'static [usize],
    );
    // (name, label, description, parent, functions)
    type TorSpec = (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
        &'static [FunctionSpec],
    );
    let tors_spec: [TorSpec; 3] = [
        (
            "board",
            "Board of Directors",
            "Sets strategy and approves budgets.",
            None,
            &[
                (
                    "chair",
                    "Chair",
                    &[CallMeeting, SetAgenda, Vote, ApproveDecisions],
                    &[0],
                ),
                ("secretary", "Secretary", &[RecordMinutes, SetAgenda], &[1]),
                ("member", "Member", &[Vote], &[2, 3]),
            ],
        ),
        (
            "finance",
            "Finance Committee",
            "Reviews budgets and reports to the board.",
            Some("board"),
            &[
                ("chair", "Chair", &[CallMeeting, SetAgenda, Vote], &[2]),
                ("treasurer", "Treasurer", &[Vote, RecordMinutes], &[3]),
            ],
        ),
        (
            "audit",
            "Audit Committee",
            "Oversees internal controls.",
            Some("board"),
            &[("chair", "Chair", &[CallMeeting, Vote], &[1])],
        ),
    ];
    for (name, label, description, parent, functions) in tors_spec {
        let tor_id = match store::find_entity(&mut *tx, kind::TOR, name).await? {
            Some(t) => t.id,
            None => {
                let parent_id = match parent {
                    Some(p) => Some(
                        store::find_entity(&mut *tx, kind::TOR, p)
                            .await?
                            .map(|e| e.id)
                            .expect("parents come first"),
                    ),
                    None => None,
                };
                let new = NewTor {
                    name: name.into(),
                    label: label.into(),
                    description: description.into(),
                    parent_id,
                };
                report.created.push(format!("tor:{name}"));
                tors::create(&mut tx, &actor, &new).await?.id
            }
        };
        for (slug, flabel, caps, holders) in functions {
            let full = format!("{name}/{slug}");
            if store::find_entity(&mut *tx, kind::TOR_FUNCTION, &full)
                .await?
                .is_some()
            {
                continue;
            }
            let new = NewFunction {
                slug: (*slug).into(),
                label: (*flabel).into(),
                description: String::new(),
                capabilities: caps.iter().copied().collect::<BTreeSet<_>>(),
            };
            let f = tors::add_function(&mut tx, &actor, tor_id, &new).await?;
            report.created.push(format!("tor_function:{full}"));
            for &h in *holders {
                tors::assign(&mut tx, &actor, f.id, user_ids[h]).await?;
            }
        }
    }
    if report.created.iter().any(|c| c == "tor:board") {
        demo_governance(&mut tx, &actor).await?;
        demo_pipeline::seed(&mut tx, &actor, &user_ids).await?;
    }
    tx.commit().await?;
    Ok(report)
}

/// Cadences and dependencies of the demo ToRs, added with them (so a second run, or an
/// administrator's later edits, are left alone).
async fn demo_governance(conn: &mut PgConnection, actor: &Actor) -> DomainResult<()> {
    use crate::domain::cadence::{Cadence, CadenceFields};
    use crate::domain::dependencies::{self, DependencyKind, NewDependency};
    let mut id = async |name: &str| -> DomainResult<i64> {
        Ok(store::find_entity(&mut *conn, kind::TOR, name)
            .await?
            .map(|e| e.id)
            .expect("demo ToRs exist"))
    };
    let (board, finance, audit) = (id("board").await?, id("finance").await?, id("audit").await?);
    let cadences = [
        (
            board,
            "monthly",
            "thursday",
            "last",
            "14:00",
            120,
            "Boardroom",
        ),
        (finance, "biweekly", "tuesday", "", "10:00", 90, "Room 2"),
        (audit, "monthly", "15", "", "09:00", 60, ""),
    ];
    for (tor, kind, day, week, time, minutes, location) in cadences {
        let fields = CadenceFields {
            meeting_cadence: kind.into(),
            cadence_day: day.into(),
            cadence_week: week.into(),
            cadence_time: time.into(),
            cadence_duration_minutes: Some(minutes),
            default_location: location.into(),
        };
        let cadence = Cadence::from_fields(&fields).map_err(DomainError::Invalid)?;
        crate::domain::outlook::set_cadence(conn, actor, tor, cadence.as_ref()).await?;
    }
    let links = [
        (
            finance,
            DependencyKind::FeedsInto,
            board,
            "budget proposals",
            true,
        ),
        (
            audit,
            DependencyKind::FeedsInto,
            board,
            "audit findings",
            false,
        ),
        (
            audit,
            DependencyKind::EscalatesTo,
            board,
            "control failures",
            false,
        ),
    ];
    for (source_id, kind, target_id, outputs, is_blocking) in links {
        let new = NewDependency {
            kind,
            source_id,
            target_id,
            output_types: outputs.into(),
            description: String::new(),
            is_blocking,
        };
        dependencies::create(conn, actor, &new).await?;
    }
    Ok(())
}
