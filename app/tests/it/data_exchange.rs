//! Import and export in upstream ahlt's JSON format, with a fixture written in the shape of
//! upstream's `data/seed/staging.json`: dry run, each conflict mode, unknown types, rollback
//! on error, an export round trip without secrets, the CLI and the admin page.

use crate::api_support;

use std::process::Stdio;

use ahlt::domain::audit::Actor;
use ahlt::domain::data::{
    self, ConflictMode, Document, ImportOptions, ImportReport, UnknownPolicy,
};
use ahlt::domain::role;
use ahlt::test_app::TestApp;
use api_support::*;
use axum::http::{StatusCode, header};
use serde_json::json;
use sqlx::PgPool;

const FIXTURE: &str = include_str!("../fixtures/upstream-seed.json");

fn fixture() -> Document {
    Document::parse(FIXTURE).unwrap()
}

async fn import(pool: &PgPool, doc: &Document, mode: ConflictMode, dry_run: bool) -> ImportReport {
    data::import(
        pool,
        &Actor::system(),
        std::slice::from_ref(doc),
        ImportOptions {
            mode,
            unknown: UnknownPolicy::Import,
            dry_run,
        },
    )
    .await
    .unwrap()
}

async fn snapshot(pool: &PgPool) -> Document {
    data::export(pool).await.unwrap().sorted()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn a_dry_run_reports_every_change_and_writes_nothing() {
    let app = TestApp::new().await;
    let before = snapshot(app.pool()).await;
    let report = import(app.pool(), &fixture(), ConflictMode::Skip, true).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.dry_run && !report.committed);
    assert_eq!(report.entities.created, 13);
    // has_role, belongs_to_tor... exist as types already; all 13 relations are new.
    assert_eq!(report.relations.created, 13);
    assert!(
        report
            .changes
            .contains(&"create tor:pilotage_board".to_owned())
    );
    assert!(
        report
            .changes
            .iter()
            .any(|c| c.starts_with("create feeds_into tor:berth_planning → tor:pilotage_board")),
        "{:?}",
        report.changes
    );
    assert_eq!(report.unknown_entity_types.get("suggestion"), Some(&1));
    assert_eq!(report.unknown_entity_types.get("meeting"), Some(&1));
    // `submitted_to` is built in since the meeting pipeline; `presented_to` is not.
    assert_eq!(report.unknown_relation_types, ["presented_to"]);
    assert_eq!(report.secrets_dropped, 1);
    assert_eq!(report.users_without_password, ["ingrid", "odd"]);
    assert_eq!(
        snapshot(app.pool()).await,
        before,
        "a dry run writes nothing"
    );
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM audit_log WHERE action = 'data.import'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn an_import_brings_dependencies_cadences_and_people_but_no_secrets() {
    let app = TestApp::new().await;
    let report = import(app.pool(), &fixture(), ConflictMode::Skip, false).await;
    assert!(report.committed, "{:?}", report.errors);
    let (_, mut admin) = admin(&app).await;

    let tors = assert_status(&admin.get("/api/v1/governance").await, 200);
    let board = tors["tors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "pilotage_board")
        .unwrap()
        .clone();
    assert_eq!(
        board["cadence"]["summary"],
        "The first Wednesday of every month at 10:00 for 90 minutes, Pilot House"
    );
    assert_eq!(board["functions"][0]["holders"][0]["username"], "ingrid");
    let deps = tors["dependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 4);
    let blocking: Vec<&serde_json::Value> =
        deps.iter().filter(|d| d["is_blocking"] == true).collect();
    assert_eq!(blocking.len(), 1);
    assert_eq!(blocking[0]["output_types"], "berth plan, pilot demand");
    assert_eq!(
        deps.iter()
            .filter(|d| d["relation_type"] == "escalates_to")
            .count(),
        1
    );

    // The hash-like property was dropped; users exist without credentials.
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM entity_properties WHERE key LIKE '%password%' OR value::text LIKE '%argon2%'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM user_credentials c JOIN entities u ON u.id = c.user_id WHERE u.name IN ('ingrid', 'odd')"
        )
        .await,
        0
    );
    // Unknown types are kept as generic entities, the undeclared relation type created.
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM entities WHERE entity_type IN ('suggestion', 'meeting')"
        )
        .await,
        2
    );
    assert_eq!(
        count(app.pool(), "SELECT count(*) FROM entities WHERE entity_type = 'relation_type' AND name = 'presented_to'").await,
        1
    );
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM audit_log WHERE action = 'data.import'"
        )
        .await,
        1
    );

    // Again in skip mode: nothing changes.
    let before = snapshot(app.pool()).await;
    let again = import(app.pool(), &fixture(), ConflictMode::Skip, false).await;
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.entities.skipped, 13);
    assert_eq!(again.relations.skipped, 13);
    assert_eq!(snapshot(app.pool()).await, before);
}

#[tokio::test]
async fn upsert_updates_what_the_file_names_and_fail_refuses_everything() {
    let app = TestApp::new().await;
    import(app.pool(), &fixture(), ConflictMode::Skip, false).await;
    let mut changed = fixture();
    let board = changed
        .entities
        .iter_mut()
        .find(|e| e.name == "pilotage_board")
        .unwrap();
    board.label = "Pilotage Board (new)".into();
    board.properties.remove("objectives");
    board
        .properties
        .insert("cadence_time".into(), json!("11:00"));
    let link = changed
        .relations
        .iter_mut()
        .find(|r| r.relation_type == "escalates_to")
        .unwrap();
    link.properties.insert("is_blocking".into(), json!("true"));

    let report = import(app.pool(), &changed, ConflictMode::Upsert, false).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(report.entities.updated, 1);
    assert_eq!(report.entities.unchanged, 12);
    assert_eq!(report.relations.updated, 1);
    assert!(
        report
            .changes
            .contains(&"update tor:pilotage_board (label, cadence_time)".to_owned()),
        "{:?}",
        report.changes
    );
    let props: serde_json::Value = sqlx::query_scalar(
        "SELECT jsonb_object_agg(p.key, p.value) FROM entity_properties p JOIN entities e ON e.id = p.entity_id \
         WHERE e.entity_type = 'tor' AND e.name = 'pilotage_board'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(props["cadence_time"], "11:00");
    assert!(
        props["objectives"].is_string(),
        "properties the file leaves out stay"
    );

    // fail: an existing item refuses the whole file, even its new parts.
    let before = snapshot(app.pool()).await;
    let mut with_new = fixture();
    with_new.entities.push(data::EntityRecord {
        id: None,
        entity_type: "tor".into(),
        name: "new_board".into(),
        label: "New".into(),
        sort_order: 0,
        properties: Default::default(),
        is_active: true,
    });
    let report = import(app.pool(), &with_new, ConflictMode::Fail, false).await;
    assert!(!report.committed);
    assert!(
        report.errors.iter().any(|e| e.contains("already exists")),
        "{:?}",
        report.errors
    );
    assert_eq!(snapshot(app.pool()).await, before);
}

#[tokio::test]
async fn any_error_rolls_the_whole_import_back() {
    let app = TestApp::new().await;
    let before = snapshot(app.pool()).await;
    let mut broken = fixture();
    broken.relations.push(data::RelationRecord {
        relation_type: "has_permission".into(),
        source: "role:harbour_master".into(),
        target: "permission:not.there".into(),
        properties: Default::default(),
    });
    let report = import(app.pool(), &broken, ConflictMode::Skip, false).await;
    assert!(!report.committed);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert!(report.errors[0].contains("permission:not.there"));
    assert_eq!(
        snapshot(app.pool()).await,
        before,
        "nothing of the file stays"
    );

    // An escalation cycle and a dependency on a non-ToR are refused too.
    let mut cyclic = fixture();
    cyclic.relations.push(data::RelationRecord {
        relation_type: "escalates_to".into(),
        source: "tor:port_council".into(),
        target: "tor:pilotage_board".into(),
        properties: Default::default(),
    });
    cyclic.relations.push(data::RelationRecord {
        relation_type: "feeds_into".into(),
        source: "user:odd".into(),
        target: "tor:pilotage_board".into(),
        properties: Default::default(),
    });
    let report = import(app.pool(), &cyclic, ConflictMode::Skip, false).await;
    assert!(!report.committed);
    assert!(
        report.errors.iter().any(|e| e.contains("circle")),
        "{:?}",
        report.errors
    );
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("two different ToRs")),
        "{:?}",
        report.errors
    );
    assert_eq!(snapshot(app.pool()).await, before);

    // Unknown types: left out with their relations, or refused.
    let skip = data::import(
        app.pool(),
        &Actor::system(),
        &[fixture()],
        ImportOptions {
            mode: ConflictMode::Skip,
            unknown: UnknownPolicy::Skip,
            dry_run: true,
        },
    )
    .await
    .unwrap();
    assert!(skip.errors.is_empty(), "{:?}", skip.errors);
    assert_eq!(skip.entities.skipped, 2);
    assert_eq!(skip.relations.skipped, 3);
    let fail = data::import(
        app.pool(),
        &Actor::system(),
        &[fixture()],
        ImportOptions {
            mode: ConflictMode::Skip,
            unknown: UnknownPolicy::Fail,
            dry_run: false,
        },
    )
    .await
    .unwrap();
    assert!(!fail.committed);
    assert!(
        fail.errors.iter().any(|e| e.contains("suggestion")),
        "{:?}",
        fail.errors
    );
}

#[tokio::test]
async fn an_export_imports_into_a_fresh_database_as_the_same_data_without_secrets() {
    let (app, _) = TestApp::with_demo().await;
    import(app.pool(), &fixture(), ConflictMode::Skip, false).await;
    let exported = data::export(app.pool()).await.unwrap();
    let text = serde_json::to_string(&exported).unwrap();
    assert!(!text.contains("$argon2"), "no password hashes");
    assert!(!text.contains("password"), "no password properties");
    // Upstream's readers take the file as it is: entity and relation records only.
    let upstream_shape: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(upstream_shape["entities"][0]["entity_type"].is_string());
    assert!(
        upstream_shape["relations"][0]["source"]
            .as_str()
            .unwrap()
            .contains(':')
    );

    let fresh = TestApp::new().await;
    let report = import(fresh.pool(), &exported, ConflictMode::Upsert, false).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(snapshot(fresh.pool()).await, exported.clone().sorted());
    // The file says `approved` for proposals on an agenda (upstream's status); the demo's
    // scheduled and decided proposals come back as they were.
    let statuses = |pool: PgPool| async move {
        sqlx::query_as::<_, (String, String)>(
            "SELECT e.name, p.value #>> '{}' FROM entities e JOIN entity_properties p \
             ON p.entity_id = e.id AND p.key = 'status' \
             WHERE e.entity_type IN ('proposal', 'agenda_point', 'meeting', 'minutes') ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let original = statuses(app.pool().clone()).await;
    assert!(
        original.iter().any(|(_, s)| s == "scheduled"),
        "{original:?}"
    );
    assert!(original.iter().any(|(_, s)| s == "decided"), "{original:?}");
    assert_eq!(statuses(fresh.pool().clone()).await, original);
}

/// The binary, with only DATABASE_URL of a migrated test database set.
fn ahlt(url: &str) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ahlt"));
    for var in ["GRAPH_URI", "AHLT_ENV_NAME", "ADMIN_PASSWORD"] {
        cmd.env_remove(var);
    }
    cmd.env("DATABASE_URL", url)
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

#[tokio::test]
async fn the_cli_imports_files_in_order_and_exports_to_stdout() {
    let app = TestApp::new().await;
    let url = app.db.url().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("staging.json");
    std::fs::write(&file, FIXTURE).unwrap();

    let out = ahlt(&url)
        .args(["data", "import", "--dry-run"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    assert!(stdout.contains("create tor:pilotage_board"), "{stdout}");
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM entities WHERE entity_type = 'tor'"
        )
        .await,
        0
    );

    // A file with a dangling reference: exit 1, nothing written, the error named.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"entities": [{"entity_type": "tor", "name": "x", "label": "X"}],
            "relations": [{"relation_type": "feeds_into", "source": "tor:x", "target": "tor:nowhere"}]}"#,
    )
    .unwrap();
    let out = ahlt(&url)
        .args(["data", "import", "--mode", "upsert"])
        .arg(&file)
        .arg(&bad)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tor:nowhere"));
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM entities WHERE entity_type = 'tor'"
        )
        .await,
        0
    );

    let out = ahlt(&url)
        .args(["data", "import"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ahlt(&url).args(["data", "export"]).output().await.unwrap();
    assert!(out.status.success());
    let exported = Document::parse(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert!(exported.entities.iter().any(|e| e.name == "pilotage_board"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("$argon2"));

    // Usage errors: an unknown mode.
    let out = ahlt(&url)
        .args(["data", "import", "--mode", "merge"])
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn the_data_page_imports_and_exports_for_data_managers_only() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (_, mut editor) = user(&app, "eddie", &[role::EDITOR]).await;
    assert_eq!(
        editor.get("/admin/data").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        editor.get("/admin/data/export").await.status,
        StatusCode::FORBIDDEN
    );
    let page = admin.get("/admin/data").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Download export"));

    let r = admin
        .post_form(
            "/admin/data/import",
            &[
                ("document", FIXTURE),
                ("mode", "skip"),
                ("unknown", "import"),
                ("dry_run", "on"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().contains("Dry run: nothing was written."),
        "{}",
        r.text()
    );
    assert_eq!(
        count(
            app.pool(),
            "SELECT count(*) FROM entities WHERE entity_type = 'tor'"
        )
        .await,
        0
    );
    let r = admin
        .post_form(
            "/admin/data/import",
            &[
                ("document", FIXTURE),
                ("mode", "skip"),
                ("unknown", "import"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("Imported."), "{}", r.text());
    let r = admin
        .post_form(
            "/admin/data/import",
            &[("document", "{not json"), ("mode", "skip")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("not an ahlt data file"), "{}", r.text());

    let r = admin.get("/admin/data/export").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let doc = Document::parse(&r.text()).unwrap();
    assert!(doc.entities.iter().any(|e| e.name == "berth_planning"));
    assert!(!r.text().contains("$argon2"));
}

/// Upstream's workflow, in the shape of its `data/seed/ontology.json`: transitions gated by
/// a permission arrive gated by the capability for the same work; a move this app already
/// has under another name, and a gate with no capability counterpart, are reported.
const UPSTREAM_WORKFLOW: &str = include_str!("../fixtures/upstream-workflow.json");

#[tokio::test]
async fn upstream_workflow_gates_become_capabilities_and_what_cannot_is_reported() {
    use ahlt::domain::Capability;
    use ahlt::domain::pipeline::workflow;

    let app = TestApp::new().await;
    let doc = Document::parse(UPSTREAM_WORKFLOW).unwrap();
    let moves = |transitions: Vec<workflow::Transition>| -> Vec<(String, String, String, Capability, bool)> {
        transitions
            .into_iter()
            .map(|t| (t.scope, t.from, t.to, t.required_capability, t.requires_outcome))
            .collect()
    };
    let before = moves(workflow::transitions(app.pool()).await.unwrap());

    let dry = import(app.pool(), &doc, ConflictMode::Skip, true).await;
    assert!(dry.errors.is_empty() && !dry.committed, "{dry:?}");
    assert!(dry.unknown_entity_types.is_empty(), "{dry:?}");
    assert_eq!(
        dry.workflow_gates,
        vec![
            "workflow_transition:proposal.draft_to_rejected: upstream permission proposal.approve → capability decision.approve",
            "workflow_transition:suggestion.accepted_to_rejected: upstream permission suggestion.review → capability agenda.set",
        ]
    );
    assert_eq!(dry.not_mapped.len(), 2, "{:?}", dry.not_mapped);
    assert!(
        dry.not_mapped[0].starts_with("workflow_transition:proposal.submitted_to_review: the move proposal submitted → under_review is already the transition proposal.submitted_to_under_review"),
        "{:?}",
        dry.not_mapped
    );
    assert!(
        dry.not_mapped[1].starts_with("workflow_transition:minutes.approved_to_draft: upstream permission \"workflow.manage\" is a global permission"),
        "{:?}",
        dry.not_mapped
    );
    assert!(
        ahlt::data_cli::describe(&dry)
            .contains("not mapped: workflow_transition:minutes.approved_to_draft")
    );
    assert_eq!(
        moves(workflow::transitions(app.pool()).await.unwrap()),
        before
    );

    let report = import(app.pool(), &doc, ConflictMode::Skip, false).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(report.workflow_gates, dry.workflow_gates);
    assert_eq!(report.not_mapped, dry.not_mapped);
    let after = moves(workflow::transitions(app.pool()).await.unwrap());
    let added: Vec<_> = after
        .iter()
        .filter(|m| !before.contains(m))
        .cloned()
        .collect();
    let own = |s: &str| s.to_owned();
    assert_eq!(
        added,
        vec![
            (
                own("proposal"),
                own("draft"),
                own("rejected"),
                Capability::ApproveDecisions,
                true
            ),
            (
                own("suggestion"),
                own("accepted"),
                own("rejected"),
                Capability::SetAgenda,
                false
            ),
        ]
    );
    // The unmapped one is there (reported, not dropped) but offers nothing; the duplicate
    // is not there at all.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM entities WHERE entity_type = 'workflow_transition' \
         AND name IN ('minutes.approved_to_draft', 'proposal.submitted_to_review')",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(names, vec!["minutes.approved_to_draft"]);

    // Exported, every transition names an upstream permission too; the export imports
    // into a fresh database as the same data.
    let exported = data::export(app.pool()).await.unwrap();
    let permission = |name: &str| {
        exported
            .entities
            .iter()
            .find(|e| e.entity_type == "workflow_transition" && e.name == name)
            .and_then(|e| e.properties.get("required_permission"))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    assert_eq!(
        permission("proposal.under_review_to_approved").as_deref(),
        Some("proposal.approve")
    );
    assert_eq!(
        permission("meeting.projected_to_confirmed").as_deref(),
        Some("meeting.call")
    );
    assert_eq!(
        permission("minutes.approved_to_draft").as_deref(),
        Some("workflow.manage")
    );
    let fresh = TestApp::new().await;
    let report = import(fresh.pool(), &exported, ConflictMode::Upsert, false).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(snapshot(fresh.pool()).await, exported.sorted());
    assert_eq!(
        moves(workflow::transitions(fresh.pool()).await.unwrap()),
        after
    );
}

/// A pipeline cycle in upstream's shape (its data manager's export, with `id`s): suggestions
/// and proposals arrive as this app's items of the ToR with their authors and rejection
/// reasons (an author the file does not hold is reported), the meeting with its agenda point
/// and minutes (sections in order); the export writes upstream's relations back and
/// imports into a fresh database unchanged.
const UPSTREAM_PIPELINE: &str = include_str!("../fixtures/upstream-pipeline.json");

#[tokio::test]
async fn an_upstream_pipeline_cycle_arrives_as_pipeline_items_and_exports_back() {
    use ahlt::domain::pipeline::{self, meetings, minutes};

    let app = TestApp::new().await;
    let doc = Document::parse(UPSTREAM_PIPELINE).unwrap();
    let report = import(app.pool(), &doc, ConflictMode::Skip, false).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(
        report.not_mapped,
        vec![
            "meeting:port-board-2026-03-04: its roll call (roll_call_data, JSON text) is not translated to attendance; kept as a property",
            "suggestion:suggestion_2026_02_09_3: its author (submitted_by_id \"99\") is no user in the files; imported without an author",
        ]
    );
    let id = |entity_type: &'static str, name: &'static str| {
        let pool = app.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT id FROM entities WHERE entity_type = $1 AND name = $2",
            )
            .bind(entity_type)
            .bind(name)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    let alice = id("user", "alice").await;
    let tor = id("tor", "pb").await;
    let rejected = id("suggestion", "suggestion_2026_02_02_3").await;
    let accepted = id("suggestion", "suggestion_2026_02_05_3").await;
    let orphan = id("suggestion", "suggestion_2026_02_09_3").await;
    let proposal = id("proposal", "new_tug_contract").await;

    let mut conn = app.pool().acquire().await.unwrap();
    let item = pipeline::load(&mut conn, rejected, None).await.unwrap();
    assert_eq!(
        (item.tor_id, item.status.as_str(), item.outcome.as_str()),
        (tor, "rejected", "Out of scope for this board")
    );
    let item = pipeline::load(&mut conn, proposal, None).await.unwrap();
    // Upstream's approved proposal whose agenda point was decided is decided here.
    assert_eq!((item.tor_id, item.status.as_str()), (tor, "decided"));
    assert!(
        report.changes.contains(
            &"status proposal:new_tug_contract: approved → decided (from its agenda points)"
                .to_owned()
        ),
        "{:?}",
        report.changes
    );
    for authored in [rejected, accepted, proposal] {
        assert_eq!(
            pipeline::authors(&mut *conn, authored).await.unwrap(),
            vec![alice]
        );
    }
    assert!(
        pipeline::authors(&mut *conn, orphan)
            .await
            .unwrap()
            .is_empty()
    );
    let meeting = id("meeting", "port-board-2026-03-04").await;
    let point = id("agenda_point", "ap_new_tug_contract").await;
    let minutes_id = id("minutes", "minutes_port-board-2026-03-04").await;
    let held = meetings::detail(&mut conn, meeting).await.unwrap();
    assert_eq!(held.meeting.tor_id, tor);
    assert_eq!(held.meeting.status, "completed");
    let agenda: Vec<i64> = held.agenda.iter().map(|e| e.point.id).collect();
    assert_eq!(agenda, vec![point]);
    assert_eq!(held.minutes_id, Some(minutes_id));
    let record = minutes::detail(&mut conn, minutes_id).await.unwrap();
    assert_eq!(record.meeting_id, meeting);
    let sections: Vec<(String, String)> = record
        .sections
        .iter()
        .map(|s| (s.text("section_kind"), s.description.clone()))
        .collect();
    assert_eq!(
        sections,
        vec![
            (
                "attendance".to_owned(),
                "- Chair — **Alice Berg**".to_owned()
            ),
            ("agenda".to_owned(), "1. New tug contract".to_owned()),
        ]
    );
    drop(conn);

    // Importing the same file again changes nothing and adds no second author.
    let again = import(app.pool(), &doc, ConflictMode::Skip, false).await;
    assert_eq!((again.entities.created, again.relations.created), (0, 0));

    let exported = data::export(app.pool()).await.unwrap();
    let reason = exported
        .entities
        .iter()
        .find(|e| e.name == "suggestion_2026_02_02_3")
        .and_then(|e| e.properties.get("rejection_reason"))
        .cloned();
    assert_eq!(reason, Some(json!("Out of scope for this board")));
    let status = exported
        .entities
        .iter()
        .find(|e| e.name == "new_tug_contract")
        .and_then(|e| e.properties.get("status"))
        .cloned();
    assert_eq!(status, Some(json!("approved")), "upstream's statuses");
    // Upstream's own relations come back as upstream wrote them.
    for relation in &doc.relations {
        assert!(
            exported
                .relations
                .iter()
                .any(|r| r.relation_type == relation.relation_type
                    && r.source == relation.source
                    && r.target == relation.target),
            "{relation:?} not exported"
        );
    }
    let fresh = TestApp::new().await;
    let report = import(fresh.pool(), &exported, ConflictMode::Upsert, false).await;
    assert!(report.committed, "{:?}", report.errors);
    assert_eq!(snapshot(fresh.pool()).await, exported.sorted());
}
