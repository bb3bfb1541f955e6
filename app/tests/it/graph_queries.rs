//! Graph-backed ABAC checks and governance map against a real FalkorDB: identical to the
//! Postgres answers on generated data, Postgres when the projection is stale, and Postgres
//! when the graph fails.

use std::collections::BTreeSet;
use std::io::{Read, Write};

use ahlt::domain::abac::{self, Grant, GrantSource};
use ahlt::domain::{Capability, DomainError, governance, kind, rel};
use ahlt::graph::{self, FalkorBackend, Projection, queries};
use ahlt::store::{self, EntityPatch, NewEntity, Properties};
use ahlt::test_app::TestApp;
use ahlt::testing::{falkordb_url, unique_name};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::PgPool;

const ENV: &str = "qa";

/// A projection of `ENV` on a graph of its own (its name returned too), resynced from
/// `pool` and so current.
async fn current_projection(pool: &PgPool) -> (Projection, String) {
    let name = unique_name("graph");
    let projection = projection_on(&name, ENV).await;
    projection.resync(pool).await.unwrap();
    assert!(projection.current().is_some());
    (projection, name)
}

async fn projection_on(graph_name: &str, env: &str) -> Projection {
    let backend = FalkorBackend::connect(&falkordb_url().await, graph_name)
        .await
        .unwrap();
    Projection::new(graph::Backend::Falkor(backend), env)
}

async fn entity(pool: &PgPool, new: NewEntity) -> i64 {
    let mut conn = pool.acquire().await.unwrap();
    store::create_entity(&mut conn, &new)
        .await
        .unwrap()
        .entity
        .id
}

async fn relate(pool: &PgPool, relation: &str, source: i64, target: i64) {
    let mut conn = pool.acquire().await.unwrap();
    store::relate(&mut conn, relation, source, target, &Default::default())
        .await
        .unwrap();
}

async fn relate_with(pool: &PgPool, relation: &str, source: i64, target: i64, props: Properties) {
    let mut conn = pool.acquire().await.unwrap();
    store::relate(&mut conn, relation, source, target, &props)
        .await
        .unwrap();
}

async fn set_active(pool: &PgPool, id: i64, active: bool) {
    let mut conn = pool.acquire().await.unwrap();
    let patch = EntityPatch {
        is_active: Some(active),
        ..Default::default()
    };
    store::update_entity(&mut conn, id, &patch).await.unwrap();
}

async fn delete(pool: &PgPool, id: i64) {
    let mut conn = pool.acquire().await.unwrap();
    store::delete_entity(&mut conn, id).await.unwrap();
}

async fn ids_of(pool: &PgPool, entity_type: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM entities WHERE entity_type = $1 ORDER BY id")
        .bind(entity_type)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn id_of(pool: &PgPool, entity_type: &str, name: &str) -> i64 {
    store::find_entity(pool, entity_type, name)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// What the generated data contains, for the test's own sanity checks.
struct Generated {
    users: Vec<i64>,
    tors: Vec<i64>,
    /// Ids that are no ToR: deleted ToRs, a function, an id never used.
    not_tors: Vec<i64>,
}

/// Random governance data on top of the demo seed: users, roles with inheritance chains
/// and a cycle, permissions (including an inactive one and a has_permission target that is
/// no permission), ToRs with parents and descriptions of several JSON types, functions with
/// random (also unknown, mixed, non-array or missing) capabilities, holders, random
/// inactive flags, and deletes.
async fn generate(pool: &PgPool, seed: u64) -> Generated {
    let mut rng = StdRng::seed_from_u64(seed);

    let mut roles = ids_of(pool, kind::ROLE).await;
    for i in 0..14 {
        let label = format!("Role {i}");
        roles.push(
            entity(
                pool,
                NewEntity::new(kind::ROLE, &format!("role_{i}")).label(&label),
            )
            .await,
        );
    }
    // Chains: each role inherits up to two roles created after it...
    for (i, &role) in roles.iter().enumerate() {
        for _ in 0..rng.gen_range(0..=2) {
            if i + 1 < roles.len() {
                let target = roles[rng.gen_range(i + 1..roles.len())];
                relate(pool, rel::INHERITS_ROLE, role, target).await;
            }
        }
    }
    // ...and a cycle (the domain refuses one, the generic store does not).
    let (a, b, c) = (
        roles[roles.len() - 3],
        roles[roles.len() - 2],
        roles[roles.len() - 1],
    );
    relate(pool, rel::INHERITS_ROLE, a, b).await;
    relate(pool, rel::INHERITS_ROLE, b, c).await;
    relate(pool, rel::INHERITS_ROLE, c, a).await;

    // Permissions: the capability permissions of the base seed, the system ones, and an
    // entity of another type named like a capability.
    let mut permissions = ids_of(pool, kind::PERMISSION).await;
    permissions.push(entity(pool, NewEntity::new("thing", Capability::Vote.as_str())).await);
    for &role in &roles {
        let n = rng.gen_range(0..4);
        let picked: Vec<i64> = permissions.choose_multiple(&mut rng, n).copied().collect();
        for p in picked {
            relate(pool, rel::HAS_PERMISSION, role, p).await;
        }
    }

    let mut users = ids_of(pool, kind::USER).await;
    for i in 0..24 {
        let label = if i % 5 == 0 {
            String::new()
        } else {
            format!("User {i}")
        };
        users.push(
            entity(
                pool,
                NewEntity::new(kind::USER, &format!("user{i:02}")).label(&label),
            )
            .await,
        );
    }
    for &user in &users {
        let n = rng.gen_range(0..3);
        let picked: Vec<i64> = roles.choose_multiple(&mut rng, n).copied().collect();
        for role in picked {
            relate(pool, rel::HAS_ROLE, user, role).await;
        }
    }

    let mut tors = ids_of(pool, kind::TOR).await;
    let descriptions = [
        json!("A committee"),
        json!(""),
        json!(42),
        json!({"b": [1, "x"], "a": true}),
        json!(["x", "y"]),
    ];
    for i in 0..9 {
        let mut new =
            NewEntity::new(kind::TOR, &format!("tor-{i}")).label(&format!("ToR {}", 9 - i));
        if i % 4 != 3 {
            new = new.property("description", descriptions[i % descriptions.len()].clone());
        }
        // Cadences as upstream writes them (strings), as numbers, and ones that cannot be
        // understood (no meetings, no cadence on the map).
        let cadence: &[(&str, Value)] = match i % 5 {
            0 => &[
                ("meeting_cadence", json!("weekly")),
                ("cadence_day", json!("monday")),
                ("cadence_time", json!("09:30")),
            ],
            1 => &[
                ("meeting_cadence", json!("monthly")),
                ("cadence_day", json!("31")),
                ("cadence_duration_minutes", json!(45)),
            ],
            2 => &[
                ("meeting_cadence", json!("biweekly")),
                ("cadence_day", json!("someday")),
            ],
            3 => &[],
            _ => &[
                ("meeting_cadence", json!("monthly")),
                ("cadence_day", json!("friday")),
                ("cadence_week", json!("last")),
                ("cadence_duration_minutes", json!("120")),
                ("default_location", json!("Room 2")),
            ],
        };
        for (key, value) in cadence {
            new = new.property(key, value.clone());
        }
        let id = entity(pool, new).await;
        if rng.gen_bool(0.6) {
            let parent = *tors.choose(&mut rng).unwrap();
            relate(pool, rel::REPORTS_TO, id, parent).await;
        }
        tors.push(id);
    }

    // Dependencies between ToRs, with properties of several JSON types (upstream writes
    // `is_blocking` as "true"), and the same relation types between non-ToRs, which the map
    // leaves out.
    let blocking = [
        json!("true"),
        json!(true),
        json!("false"),
        json!(1),
        json!(["a", 2]),
    ];
    for i in 0..16 {
        let (source, target) = (
            *tors.choose(&mut rng).unwrap(),
            *tors.choose(&mut rng).unwrap(),
        );
        if source == target {
            continue;
        }
        let kind = if i % 3 == 0 {
            rel::ESCALATES_TO
        } else {
            rel::FEEDS_INTO
        };
        let mut props = Properties::new();
        if i % 4 != 0 {
            props.insert("is_blocking".into(), blocking[i % blocking.len()].clone());
        }
        if i % 2 == 0 {
            props.insert("output_types".into(), json!(format!("outputs {i}")));
        }
        if i % 5 == 1 {
            props.insert("description".into(), json!({"b": i, "a": [1, "x"]}));
        }
        relate_with(pool, kind, source, target, props).await;
    }
    relate(pool, rel::FEEDS_INTO, users[1], tors[0]).await;
    relate(pool, rel::ESCALATES_TO, tors[0], users[1]).await;

    let mut functions = ids_of(pool, kind::TOR_FUNCTION).await;
    for i in 0..30 {
        let tor = *tors.choose(&mut rng).unwrap();
        let mut caps: Vec<Value> = Capability::ALL
            .iter()
            .filter(|_| rng.gen_bool(0.35))
            .map(|c| json!(c.as_str()))
            .collect();
        let capabilities = match i % 10 {
            7 => Some(json!(Capability::ViewTor.as_str())), // not an array: grants nothing
            8 => None,                                      // no capabilities at all
            9 => {
                caps.push(json!(1)); // mixed: the string elements count
                Some(Value::Array(caps))
            }
            _ => {
                if i % 3 == 0 {
                    caps.push(json!("tor.delete")); // unknown: ignored
                }
                Some(Value::Array(caps))
            }
        };
        let mut new = NewEntity::new(kind::TOR_FUNCTION, &format!("t{tor}/f-{i}"))
            .label(&format!("Function {}", i % 7))
            .property("description", format!("does {i}"));
        if let Some(caps) = capabilities {
            new = new.property("capabilities", caps);
        }
        let id = entity(pool, new).await;
        relate(pool, rel::BELONGS_TO_TOR, id, tor).await;
        if i == 4 {
            // One function of two ToRs.
            let other = *tors.iter().find(|&&t| t != tor).unwrap();
            relate(pool, rel::BELONGS_TO_TOR, id, other).await;
        }
        functions.push(id);
    }
    for &user in &users {
        let n = rng.gen_range(0..4);
        let picked: Vec<i64> = functions.choose_multiple(&mut rng, n).copied().collect();
        for f in picked {
            relate(pool, rel::FILLS_POSITION, user, f).await;
        }
    }

    // Random inactive flags, one capability permission among them.
    for ids in [&users, &roles, &tors, &functions] {
        for &id in ids.iter() {
            if rng.gen_bool(0.2) {
                set_active(pool, id, false).await;
            }
        }
    }
    set_active(
        pool,
        id_of(pool, kind::PERMISSION, Capability::SetAgenda.as_str()).await,
        false,
    )
    .await;

    // A few deletes.
    let mut not_tors = Vec::new();
    for ids in [&mut users, &mut roles, &mut functions] {
        // Not the last three: the roles of the cycle stay.
        let gone = ids.remove(rng.gen_range(0..ids.len() - 3));
        delete(pool, gone).await;
    }
    let gone_tor = tors.remove(rng.gen_range(0..tors.len()));
    delete(pool, gone_tor).await;
    not_tors.push(gone_tor);
    not_tors.push(functions[0]);
    not_tors.push(i64::MAX);

    // Fixed cases next to the random ones. `blocked` reaches `far` only through the
    // inactive `middle`; `inherits` reaches it through the cycle a -> b -> c -> a.
    let middle = entity(pool, NewEntity::new(kind::ROLE, "middle")).await;
    let far = entity(pool, NewEntity::new(kind::ROLE, "far")).await;
    let near = entity(pool, NewEntity::new(kind::ROLE, "near")).await;
    relate(pool, rel::INHERITS_ROLE, near, middle).await;
    relate(pool, rel::INHERITS_ROLE, middle, far).await;
    set_active(pool, middle, false).await;
    let call = id_of(pool, kind::PERMISSION, Capability::CallMeeting.as_str()).await;
    relate(pool, rel::HAS_PERMISSION, far, call).await;
    relate(pool, rel::INHERITS_ROLE, a, far).await;
    for (name, role) in [("blocked", near), ("inherits", b)] {
        let user = entity(pool, NewEntity::new(kind::USER, name)).await;
        relate(pool, rel::HAS_ROLE, user, role).await;
        users.push(user);
    }
    for id in [a, b, c] {
        set_active(pool, id, true).await;
    }

    Generated {
        users,
        tors,
        not_tors,
    }
}

#[tokio::test]
async fn graph_and_postgres_agree_on_generated_data() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let data = generate(pool, 0x5eed_a61f).await;

    // Another environment in the same graph, from another database: its ids collide with
    // ours, so any query that forgets `env` answers wrongly.
    let graph_name = unique_name("graph");
    let (decoy, _) = TestApp::with_demo().await;
    generate(decoy.pool(), 7).await;
    projection_on(&graph_name, "decoy")
        .await
        .resync(decoy.pool())
        .await
        .unwrap();

    let projection = projection_on(&graph_name, ENV).await;
    projection.resync(pool).await.unwrap();
    let backend = projection.current().expect("current after a resync");

    // Users, plus ids that are no active user: a role, a ToR, an unused id.
    let mut users = data.users.clone();
    users.extend([ids_of(pool, kind::ROLE).await[0], data.tors[0], i64::MAX]);
    let tors: Vec<i64> = data.tors.iter().chain(&data.not_tors).copied().collect();

    let (mut role_grants, mut position_grants, mut allowed, mut denied, mut unknown) =
        (0, 0, 0, 0, 0);
    for &user in &users {
        let expected = abac::grants_pg(pool, user).await.unwrap();
        let actual = queries::grants(backend, ENV, user).await.unwrap();
        assert_eq!(actual, expected, "grants of user {user}");
        role_grants += expected.iter().filter(|g| g.tor_id.is_none()).count();
        position_grants += expected.iter().filter(|g| g.tor_id.is_some()).count();
        // The domain entry point takes the graph path and gives the same answer.
        assert_eq!(
            abac::grants(pool, Some(&projection), user).await.unwrap(),
            expected
        );

        for &tor in &tors {
            let expected = abac::capabilities_on_pg(pool, user, tor).await.unwrap();
            let actual = queries::capabilities_on(backend, ENV, user, tor)
                .await
                .unwrap();
            assert_eq!(actual, expected, "capabilities of user {user} on ToR {tor}");

            for capability in Capability::ALL {
                let mut conn = pool.acquire().await.unwrap();
                let expected = abac::may_in(&mut conn, user, capability, tor).await;
                let actual = queries::may(backend, ENV, user, capability, tor)
                    .await
                    .unwrap();
                match (expected, actual) {
                    (Ok(e), Some(a)) => {
                        assert_eq!(a, e, "may user {user} {capability} on ToR {tor}");
                        if e {
                            allowed += 1;
                        } else {
                            denied += 1;
                        }
                    }
                    (Err(DomainError::NotFound(_)), None) => unknown += 1,
                    (e, a) => panic!(
                        "may user {user} {capability} on ToR {tor}: Postgres {e:?}, graph {a:?}"
                    ),
                }
            }
        }
    }
    // Inheritance stops at an inactive role and follows a cycle.
    let far_grant = Grant {
        capability: Capability::CallMeeting,
        tor_id: None,
        via: GrantSource::Role { role: "far".into() },
    };
    let blocked = id_of(pool, kind::USER, "blocked").await;
    let inherits = id_of(pool, kind::USER, "inherits").await;
    assert!(
        !abac::grants_pg(pool, blocked)
            .await
            .unwrap()
            .contains(&far_grant)
    );
    assert!(
        abac::grants_pg(pool, inherits)
            .await
            .unwrap()
            .contains(&far_grant)
    );
    // The data exercised every branch.
    assert!(
        role_grants > 20 && position_grants > 20,
        "{role_grants} {position_grants}"
    );
    assert!(
        allowed > 50 && denied > 50 && unknown > 0,
        "{allowed} {denied} {unknown}"
    );

    let expected = governance::map_pg(pool).await.unwrap().sorted();
    let actual = queries::governance_map(backend, ENV)
        .await
        .unwrap()
        .sorted();
    assert_eq!(actual, expected);
    assert_eq!(
        governance::map(pool, Some(&projection)).await.unwrap(),
        expected
    );
    let dependencies_in_map = expected.dependencies.len();
    let blocking_in_map = expected
        .dependencies
        .iter()
        .filter(|d| d.is_blocking)
        .count();
    let cadences_in_map = expected.tors.iter().filter(|t| t.cadence.is_some()).count();
    assert!(
        dependencies_in_map >= 8 && blocking_in_map >= 2 && cadences_in_map >= 4,
        "{dependencies_in_map} {blocking_in_map} {cadences_in_map}"
    );
    let tors_in_map = expected.tors.len();
    let functions_in_map: usize = expected.tors.iter().map(|t| t.functions.len()).sum();
    assert!(
        tors_in_map >= 10 && functions_in_map >= 30,
        "{tors_in_map} {functions_in_map}"
    );
}

/// A user whose grants differ between the graph (resynced before) and Postgres (changed
/// after): the role `late` with `tor.edit`, and a new position with `decision.vote` on
/// `tor`. Also relabels the ToR.
async fn change_after_resync(pool: &PgPool, user: i64, tor: i64) {
    let role = entity(pool, NewEntity::new(kind::ROLE, "late")).await;
    relate(pool, rel::HAS_ROLE, user, role).await;
    let edit = id_of(pool, kind::PERMISSION, Capability::EditTor.as_str()).await;
    relate(pool, rel::HAS_PERMISSION, role, edit).await;
    let function = entity(
        pool,
        NewEntity::new(kind::TOR_FUNCTION, "late/voter")
            .label("Voter")
            .property("capabilities", json!([Capability::Vote.as_str()])),
    )
    .await;
    relate(pool, rel::BELONGS_TO_TOR, function, tor).await;
    relate(pool, rel::FILLS_POSITION, user, function).await;
    let mut conn = pool.acquire().await.unwrap();
    let patch = EntityPatch {
        label: Some("Renamed after the resync".into()),
        ..Default::default()
    };
    store::update_entity(&mut conn, tor, &patch).await.unwrap();
}

#[tokio::test]
async fn a_stale_projection_is_not_consulted() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let user = entity(pool, NewEntity::new(kind::USER, "newcomer")).await;
    let tor = ids_of(pool, kind::TOR).await[0];
    let (projection, _) = current_projection(pool).await;
    change_after_resync(pool, user, tor).await;
    let graph = Some(&projection);

    // Current: the graph answers, and it has not seen the change.
    assert!(abac::grants(pool, graph, user).await.unwrap().is_empty());
    assert!(
        !abac::may(pool, graph, user, Capability::EditTor, tor)
            .await
            .unwrap()
    );
    assert!(
        abac::capabilities_on(pool, graph, user, tor)
            .await
            .unwrap()
            .is_empty()
    );
    let old_map = governance::map(pool, graph).await.unwrap();
    assert!(
        old_map
            .tors
            .iter()
            .all(|t| t.tor.label != "Renamed after the resync")
    );

    // Stale: Postgres answers, with the change.
    projection.mark_stale();
    let grants = abac::grants(pool, graph, user).await.unwrap();
    assert_eq!(grants, abac::grants_pg(pool, user).await.unwrap());
    assert!(grants.contains(&Grant {
        capability: Capability::EditTor,
        tor_id: None,
        via: GrantSource::Role {
            role: "late".into()
        },
    }));
    assert!(
        abac::may(pool, graph, user, Capability::EditTor, tor)
            .await
            .unwrap()
    );
    assert!(
        abac::may(pool, graph, user, Capability::Vote, tor)
            .await
            .unwrap()
    );
    assert_eq!(
        abac::capabilities_on(pool, graph, user, tor).await.unwrap(),
        BTreeSet::from([Capability::EditTor, Capability::Vote])
    );
    let map = governance::map(pool, graph).await.unwrap();
    assert_eq!(map, governance::map_pg(pool).await.unwrap().sorted());
    assert_ne!(map, old_map);
}

/// Replaces the FalkorDB key `graph_name` with a plain string, so every graph query on it
/// fails (WRONGTYPE).
fn break_graph(url: &str, graph_name: &str) {
    let url = url::Url::parse(url).unwrap();
    let mut conn =
        std::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).unwrap();
    let command = |args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        out
    };
    let script = command(&["DEL", graph_name]) + &command(&["SET", graph_name, "broken"]);
    conn.write_all(script.as_bytes()).unwrap();
    // Both replies: ":1\r\n" (or ":0") and "+OK\r\n".
    let mut reply = Vec::new();
    let mut buf = [0u8; 64];
    while !String::from_utf8_lossy(&reply).contains("+OK\r\n") {
        let n = conn.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "connection closed: {}",
            String::from_utf8_lossy(&reply)
        );
        reply.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn a_failing_graph_is_answered_from_postgres() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let tors = ids_of(pool, kind::TOR).await;
    let users = ids_of(pool, kind::USER).await;
    let (projection, graph_name) = current_projection(pool).await;
    break_graph(&falkordb_url().await, &graph_name);

    // Still current (nothing marks it stale), and its reads fail.
    let backend = projection.current().expect("still current");
    assert!(queries::grants(backend, ENV, users[0]).await.is_err());
    assert!(queries::governance_map(backend, ENV).await.is_err());

    let graph = Some(&projection);
    let mut granted = 0;
    for &user in &users {
        let grants = abac::grants(pool, graph, user).await.unwrap();
        assert_eq!(grants, abac::grants_pg(pool, user).await.unwrap());
        granted += grants.len();
        for &tor in &tors {
            assert_eq!(
                abac::capabilities_on(pool, graph, user, tor).await.unwrap(),
                abac::capabilities_on_pg(pool, user, tor).await.unwrap()
            );
            for capability in Capability::ALL {
                let mut conn = pool.acquire().await.unwrap();
                assert_eq!(
                    abac::may(pool, graph, user, capability, tor).await.unwrap(),
                    abac::may_in(&mut conn, user, capability, tor)
                        .await
                        .unwrap()
                );
            }
        }
    }
    assert!(granted > 0);
    // An unknown ToR is still an error, not "no".
    let unknown = abac::may(pool, graph, users[0], Capability::ViewTor, i64::MAX).await;
    assert!(
        matches!(unknown, Err(DomainError::NotFound(_))),
        "{unknown:?}"
    );
    let map = governance::map(pool, graph).await.unwrap();
    assert_eq!(map, governance::map_pg(pool).await.unwrap().sorted());
    assert!(!map.tors.is_empty());
}

/// Every ABAC answer, grant list, permission set and governance map the app's access cache
/// gives equals the direct Postgres answer: on generated data, and again after changes made
/// behind the app's back (another replica or the CLI) once their notifications arrived.
#[tokio::test]
async fn the_access_cache_agrees_with_postgres_on_generated_data() {
    let (app, _) = TestApp::with_demo().await;
    let pool = app.pool();
    let data = generate(pool, 0xacce55).await;
    let _listener = app.with_access_cache().await;
    let access = app.state.access.clone();

    let mut users = data.users.clone();
    users.extend([ids_of(pool, kind::ROLE).await[0], data.tors[0], i64::MAX]);
    let tors: Vec<i64> = data.tors.iter().chain(&data.not_tors).copied().collect();

    let compare = |round: &'static str| {
        let (users, tors, access) = (users.clone(), tors.clone(), access.clone());
        async move {
            let (mut allowed, mut denied, mut unknown) = (0, 0, 0);
            for &user in &users {
                // Twice: the first answer fills the cache, the second comes from it.
                for _ in 0..2 {
                    assert_eq!(
                        access.grants(pool, None, user).await.unwrap(),
                        abac::grants_pg(pool, user).await.unwrap(),
                        "{round}: grants of user {user}"
                    );
                    let principal = access.principal(pool, user).await.unwrap();
                    let expected_user = ahlt::domain::users::get(pool, user).await.unwrap();
                    assert_eq!(principal.user, expected_user, "{round}: user {user}");
                    if expected_user.is_some() {
                        assert_eq!(
                            *principal.permissions,
                            ahlt::domain::roles::effective_permissions(pool, user)
                                .await
                                .unwrap(),
                            "{round}: permissions of user {user}"
                        );
                    }
                }
                for &tor in &tors {
                    for capability in Capability::ALL {
                        let mut conn = pool.acquire().await.unwrap();
                        let expected = abac::may_in(&mut conn, user, capability, tor).await;
                        let cached = access.may(pool, None, user, capability, tor).await;
                        match (expected, cached) {
                            (Ok(e), Ok(c)) => {
                                assert_eq!(c, e, "{round}: may {user} {capability} on {tor}");
                                if e {
                                    allowed += 1;
                                } else {
                                    denied += 1;
                                }
                            }
                            (Err(DomainError::NotFound(_)), Err(DomainError::NotFound(_))) => {
                                unknown += 1
                            }
                            (e, c) => panic!(
                                "{round}: may {user} {capability} on {tor}: Postgres {e:?}, cache {c:?}"
                            ),
                        }
                    }
                }
            }
            assert!(
                allowed > 50 && denied > 50 && unknown > 0,
                "{round}: {allowed} {denied} {unknown}"
            );
            for _ in 0..2 {
                assert_eq!(
                    *access.governance_map(pool, None).await.unwrap(),
                    governance::map_pg(pool).await.unwrap().sorted(),
                    "{round}: governance map"
                );
            }
        }
    };
    compare("generated").await;
    assert!(access.is_active());

    // Changes straight to the database, as another replica or `ahlt admin` makes them.
    let mut rng = StdRng::seed_from_u64(0xc4a9e);
    let roles = ids_of(pool, kind::ROLE).await;
    for _ in 0..6 {
        let role = *roles.choose(&mut rng).unwrap();
        set_active(pool, role, rng.gen_bool(0.5)).await;
    }
    let functions = ids_of(pool, kind::TOR_FUNCTION).await;
    for &function in functions.choose_multiple(&mut rng, 4) {
        let user = *data.users.choose(&mut rng).unwrap();
        let mut conn = pool.acquire().await.unwrap();
        store::relate_if_absent(&mut conn, rel::FILLS_POSITION, user, function)
            .await
            .unwrap();
    }
    set_active(pool, data.tors[1], false).await;
    delete(pool, data.tors[2]).await;
    access.sync(pool).await.unwrap();
    compare("after changes elsewhere").await;
}
