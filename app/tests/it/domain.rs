//! The EAV store and the governance domain against a real PostgreSQL.

use std::collections::BTreeSet;

use ahlt::domain::abac::{self, GrantSource};
use ahlt::domain::audit::Actor;
use ahlt::domain::tors::{self, FunctionUpdate, NewFunction, NewTor, TorUpdate};
use ahlt::domain::users::{self, NewUser, UserUpdate};
use ahlt::domain::{Capability, DomainError, kind, rel, roles};
use ahlt::store::{self, EntityFilter, EntityPatch, NewEntity, PageRequest, StoreError};
use ahlt::test_app::TestApp;
use serde_json::json;
use sqlx::PgPool;

async fn user(pool: &PgPool, name: &str, roles: &[&str]) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    let new = NewUser {
        username: name.into(),
        display_name: name.to_uppercase(),
        password: "a long enough password".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    };
    users::create(&mut conn, &Actor::system(), &new)
        .await
        .unwrap()
        .id
}

async fn tor(pool: &PgPool, name: &str, parent: Option<i64>) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    let new = NewTor {
        name: name.into(),
        label: name.into(),
        description: String::new(),
        parent_id: parent,
    };
    tors::create(&mut conn, &Actor::system(), &new)
        .await
        .unwrap()
        .id
}

async fn function(pool: &PgPool, tor_id: i64, slug: &str, caps: &[Capability]) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    let new = NewFunction {
        slug: slug.into(),
        label: slug.into(),
        description: String::new(),
        capabilities: caps.iter().copied().collect(),
    };
    tors::add_function(&mut conn, &Actor::system(), tor_id, &new)
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn entities_round_trip_with_properties_and_patch_semantics() {
    let app = TestApp::new().await;
    let mut conn = app.pool().acquire().await.unwrap();
    let created = store::create_entity(
        &mut conn,
        &NewEntity::new("widget", "w1")
            .label("Widget")
            .property("size", 3)
            .property("tags", json!(["a", "b"])),
    )
    .await
    .unwrap();
    let id = created.entity.id;
    let fetched = store::require_entity(app.pool(), id).await.unwrap();
    assert_eq!(fetched.properties["size"], json!(3));
    assert_eq!(fetched.properties["tags"], json!(["a", "b"]));

    // An unchanged patch leaves updated_at alone; a real change moves it and removes keys.
    let same = store::update_entity(
        &mut conn,
        id,
        &EntityPatch {
            label: Some("Widget".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(same.entity.updated_at, fetched.entity.updated_at);
    let mut patch = EntityPatch::default();
    patch.properties.insert("size".into(), None);
    patch.properties.insert("colour".into(), Some(json!("red")));
    let changed = store::update_entity(&mut conn, id, &patch).await.unwrap();
    assert!(!changed.properties.contains_key("size"));
    assert_eq!(changed.properties["colour"], json!("red"));
    assert!(changed.entity.updated_at >= fetched.entity.updated_at);

    store::delete_entity(&mut conn, id).await.unwrap();
    assert!(store::get_entity(app.pool(), id).await.unwrap().is_none());
    assert!(matches!(
        store::delete_entity(&mut conn, id).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn hostile_identifiers_and_duplicates_are_rejected_without_side_effects() {
    let app = TestApp::new().await;
    let mut conn = app.pool().acquire().await.unwrap();
    for bad_type in ["User", "a b", "x'; DROP TABLE entities; --", "a`b", ""] {
        let err = store::create_entity(&mut conn, &NewEntity::new(bad_type, "n"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(_)),
            "{bad_type:?}: {err:?}"
        );
    }
    let err = store::create_entity(
        &mut conn,
        &NewEntity::new("widget", "n").property("bad key", 1),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM entities")
        .fetch_one(app.pool())
        .await
        .unwrap();
    store::create_entity(&mut conn, &NewEntity::new("widget", "dup"))
        .await
        .unwrap();
    let err = store::create_entity(&mut conn, &NewEntity::new("widget", "dup"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM entities")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(after, before + 1);
}

#[tokio::test]
async fn relations_are_typed_idempotent_and_protect_their_type() {
    let app = TestApp::new().await;
    let mut conn = app.pool().acquire().await.unwrap();
    let a = store::create_entity(&mut conn, &NewEntity::new("widget", "a"))
        .await
        .unwrap()
        .entity
        .id;
    let b = store::create_entity(&mut conn, &NewEntity::new("widget", "b"))
        .await
        .unwrap()
        .entity
        .id;
    let r1 = store::relate(&mut conn, rel::REPORTS_TO, a, b, &Default::default())
        .await
        .unwrap();
    let r2 = store::relate(&mut conn, rel::REPORTS_TO, a, b, &Default::default())
        .await
        .unwrap();
    assert_eq!(r1.id, r2.id);
    assert!(matches!(
        store::create_relation(&mut conn, rel::REPORTS_TO, a, b, &Default::default()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store::relate(&mut conn, "no_such_type", a, b, &Default::default()).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store::relate(&mut conn, rel::REPORTS_TO, a, 999_999, &Default::default()).await,
        Err(StoreError::NotFound(_))
    ));

    let from_a = store::neighbours(app.pool(), a).await.unwrap();
    let from_b = store::neighbours(app.pool(), b).await.unwrap();
    assert_eq!(
        (from_a.len(), from_a[0].outgoing, from_a[0].other_id),
        (1, true, b)
    );
    assert_eq!(
        (from_b.len(), from_b[0].outgoing, from_b[0].other_id),
        (1, false, a)
    );

    // A relation type in use cannot be deleted; the relation survives.
    let type_id = store::relation_type_id(app.pool(), rel::REPORTS_TO)
        .await
        .unwrap();
    assert!(matches!(
        store::delete_entity(&mut conn, type_id).await,
        Err(StoreError::Conflict(_))
    ));
    // A non-relation-type entity can't be used as a relation type even by raw SQL.
    let raw = sqlx::query(
        "INSERT INTO relations (relation_type_id, source_id, target_id) VALUES ($1, $2, $3)",
    )
    .bind(a)
    .bind(a)
    .bind(b)
    .execute(app.pool())
    .await;
    assert!(raw.is_err());
    store::delete_entity(&mut conn, b).await.unwrap();
    assert!(
        store::get_relation(app.pool(), r1.id)
            .await
            .unwrap()
            .is_none(),
        "relations cascade with their ends"
    );
}

#[tokio::test]
async fn keyset_pages_cover_everything_once_and_search_escapes_wildcards() {
    let app = TestApp::new().await;
    let mut conn = app.pool().acquire().await.unwrap();
    for i in 0..23 {
        store::create_entity(&mut conn, &NewEntity::new("item", &format!("item {i:02}")))
            .await
            .unwrap();
    }
    store::create_entity(&mut conn, &NewEntity::new("item", "100% done"))
        .await
        .unwrap();
    let filter = EntityFilter {
        entity_type: Some("item".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut page = PageRequest::first(10);
    loop {
        let result = store::list_entities(app.pool(), &filter, page)
            .await
            .unwrap();
        assert!(result.items.len() <= 10);
        seen.extend(result.items.iter().map(|e| e.id));
        match result.next_after {
            Some(after) => page.after = Some(after),
            None => break,
        }
    }
    assert_eq!(seen.len(), 24);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 24, "no repeats");
    let percent = EntityFilter {
        entity_type: Some("item".into()),
        search: Some("%".into()),
        ..Default::default()
    };
    let hits = store::list_entities(app.pool(), &percent, PageRequest::first(50))
        .await
        .unwrap();
    assert_eq!(
        hits.items
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["100% done"]
    );
}

#[tokio::test]
async fn role_inheritance_grants_inherited_permissions_and_refuses_cycles() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let editor_user = user(pool, "ed", &["editor"]).await;
    let perms = roles::effective_permissions(pool, editor_user)
        .await
        .unwrap();
    assert!(perms.contains("tors.manage"), "own permission");
    assert!(perms.contains("tors.view"), "inherited from viewer");
    assert!(!perms.contains("users.manage"));

    let all = roles::list(pool).await.unwrap();
    let viewer = all.iter().find(|r| r.name == "viewer").unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let err = roles::set_inherits(&mut conn, &Actor::system(), viewer.id, &["admin".into()])
        .await
        .unwrap_err();
    assert!(
        matches!(err, DomainError::Invalid(_)),
        "viewer -> admin -> editor -> viewer is a cycle: {err:?}"
    );
    assert_eq!(
        roles::get(pool, viewer.id).await.unwrap().inherits,
        Vec::<String>::new()
    );

    // Deactivating the user removes every permission.
    users::update(
        &mut conn,
        &Actor::system(),
        editor_user,
        &UserUpdate {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        roles::effective_permissions(pool, editor_user)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn abac_grants_capabilities_through_roles_and_through_positions() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let board = tor(pool, "board", None).await;
    let finance = tor(pool, "finance", Some(board)).await;
    let secretary = function(
        pool,
        board,
        "secretary",
        &[Capability::RecordMinutes, Capability::SetAgenda],
    )
    .await;
    let carol = user(pool, "carol", &["viewer"]).await;
    let admin = users::find_by_username(pool, "admin")
        .await
        .unwrap()
        .unwrap()
        .id;

    // Role-derived: admin may everything everywhere; a viewer only views.
    for cap in Capability::ALL {
        assert!(
            abac::may(pool, None, admin, cap, finance).await.unwrap(),
            "admin {cap}"
        );
    }
    assert!(
        abac::may(pool, None, carol, Capability::ViewTor, board)
            .await
            .unwrap()
    );
    assert!(
        !abac::may(pool, None, carol, Capability::RecordMinutes, board)
            .await
            .unwrap()
    );

    // Position-derived: only on the ToR the function belongs to.
    let mut conn = pool.acquire().await.unwrap();
    tors::assign(&mut conn, &Actor::system(), secretary, carol)
        .await
        .unwrap();
    assert!(
        abac::may(pool, None, carol, Capability::RecordMinutes, board)
            .await
            .unwrap()
    );
    assert!(
        !abac::may(pool, None, carol, Capability::RecordMinutes, finance)
            .await
            .unwrap()
    );
    assert_eq!(
        abac::capabilities_on(pool, None, carol, board)
            .await
            .unwrap(),
        BTreeSet::from([
            Capability::ViewTor,
            Capability::SetAgenda,
            Capability::RecordMinutes
        ])
    );
    let grants = abac::grants(pool, None, carol).await.unwrap();
    assert!(grants.iter().any(|g| g.capability == Capability::RecordMinutes
        && g.tor_id == Some(board)
        && matches!(&g.via, GrantSource::Position { function_id, .. } if *function_id == secretary)));
    assert!(grants.iter().any(|g| g.capability == Capability::ViewTor
        && g.tor_id.is_none()
        && matches!(&g.via, GrantSource::Role { role } if role == "viewer")));

    // Changing the flags, deactivating the ToR and vacating each take the grant away.
    tors::update_function(
        &mut conn,
        &Actor::system(),
        secretary,
        &FunctionUpdate {
            capabilities: Some([Capability::SetAgenda].into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !abac::may(pool, None, carol, Capability::RecordMinutes, board)
            .await
            .unwrap()
    );
    assert!(
        abac::may(pool, None, carol, Capability::SetAgenda, board)
            .await
            .unwrap()
    );
    tors::update(
        &mut conn,
        &Actor::system(),
        board,
        &TorUpdate {
            is_active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !abac::may(pool, None, carol, Capability::SetAgenda, board)
            .await
            .unwrap()
    );
    tors::update(
        &mut conn,
        &Actor::system(),
        board,
        &TorUpdate {
            is_active: Some(true),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    tors::vacate(&mut conn, &Actor::system(), secretary, carol)
        .await
        .unwrap();
    assert!(
        !abac::may(pool, None, carol, Capability::SetAgenda, board)
            .await
            .unwrap()
    );

    assert!(matches!(
        abac::may(pool, None, carol, Capability::Vote, 987_654).await,
        Err(DomainError::NotFound(_))
    ));
}

#[tokio::test]
async fn tors_keep_a_tree_and_functions_are_scoped_to_their_tor() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let board = tor(pool, "board", None).await;
    let finance = tor(pool, "finance", Some(board)).await;
    let mut conn = pool.acquire().await.unwrap();
    let cycle = tors::update(
        &mut conn,
        &Actor::system(),
        board,
        &TorUpdate {
            parent_id: Some(Some(finance)),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(cycle, Err(DomainError::Invalid(_))), "{cycle:?}");

    // The same slug may exist in two ToRs, but not twice in one.
    function(pool, board, "chair", &[Capability::Vote]).await;
    function(pool, finance, "chair", &[Capability::Vote]).await;
    let dup = tors::add_function(
        &mut conn,
        &Actor::system(),
        board,
        &NewFunction {
            slug: "chair".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(dup, Err(DomainError::Conflict(_))), "{dup:?}");
    let bad = tors::add_function(
        &mut conn,
        &Actor::system(),
        board,
        &NewFunction {
            slug: "Chair!".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(matches!(bad, Err(DomainError::Invalid(_))));

    tors::delete(&mut conn, &Actor::system(), board)
        .await
        .unwrap();
    let left: Vec<String> =
        sqlx::query_scalar("SELECT name FROM entities WHERE entity_type = $1 ORDER BY name")
            .bind(kind::TOR_FUNCTION)
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        left,
        ["finance/chair"],
        "deleting a ToR deletes its functions only"
    );
    assert_eq!(tors::summary(pool, finance).await.unwrap().parent_id, None);
}

#[tokio::test]
async fn writes_leave_an_audit_trail_without_secrets() {
    let app = TestApp::new().await;
    let pool = app.pool();
    let id = user(pool, "dora", &["viewer"]).await;
    let mut conn = pool.acquire().await.unwrap();
    users::set_password(&mut conn, &Actor::system(), id, "another long password")
        .await
        .unwrap();
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, details::text FROM audit_log WHERE target_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        actions.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(),
        ["user.create", "user.password_change"]
    );
    assert!(
        actions
            .iter()
            .all(|(_, d)| !d.contains("password") || !d.contains("long")),
        "{actions:?}"
    );
    let hashes: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE details::text LIKE '%argon2%'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(hashes, 0);
}
