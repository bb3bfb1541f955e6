//! The map's JSON contract (`GET /api/v1/governance`, which the interactive map draws): its
//! shape, and that the graph projection (FalkorDB) and PostgreSQL give the same answer.

use crate::api_support;

use std::collections::BTreeSet;

use ahlt::graph::{self, FalkorBackend, GraphBackend, Projection};
use ahlt::test_app::TestApp;
use ahlt::testing::{falkordb_url, unique_name};
use api_support::*;
use axum::http::Method;
use serde_json::{Value, json};

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

fn set(items: &[&'static str]) -> BTreeSet<&'static str> {
    items.iter().copied().collect()
}

/// Checks every field's name and JSON type.
fn assert_contract(map: &Value) {
    assert_eq!(keys(map), set(&["tors", "dependencies"]));
    let tors = map["tors"].as_array().unwrap();
    let ids: BTreeSet<i64> = tors.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    for tor in tors {
        assert_eq!(
            keys(tor),
            set(&[
                "id",
                "name",
                "label",
                "description",
                "is_active",
                "parent_id",
                "function_count",
                "member_count",
                "cadence",
                "functions",
                "my_capabilities"
            ]),
            "{tor}"
        );
        assert!(tor["name"].is_string() && tor["label"].is_string());
        assert!(tor["is_active"].is_boolean());
        assert!(tor["parent_id"].is_null() || ids.contains(&tor["parent_id"].as_i64().unwrap()));
        assert!(
            tor["my_capabilities"]
                .as_array()
                .unwrap()
                .iter()
                .all(Value::is_string)
        );
        if !tor["cadence"].is_null() {
            assert_eq!(
                keys(&tor["cadence"]),
                set(&[
                    "meeting_cadence",
                    "cadence_day",
                    "cadence_week",
                    "cadence_time",
                    "cadence_duration_minutes",
                    "default_location",
                    "summary"
                ])
            );
            assert!(tor["cadence"]["cadence_duration_minutes"].is_u64());
        }
        for function in tor["functions"].as_array().unwrap() {
            assert_eq!(
                keys(function),
                set(&[
                    "id",
                    "tor_id",
                    "slug",
                    "label",
                    "description",
                    "capabilities",
                    "holders"
                ])
            );
            for holder in function["holders"].as_array().unwrap() {
                assert_eq!(keys(holder), set(&["id", "username", "display_name"]));
            }
        }
    }
    for dependency in map["dependencies"].as_array().unwrap() {
        assert_eq!(
            keys(dependency),
            set(&[
                "id",
                "relation_type",
                "source_id",
                "target_id",
                "output_types",
                "description",
                "is_blocking"
            ])
        );
        assert!(
            ["feeds_into", "escalates_to"].contains(&dependency["relation_type"].as_str().unwrap())
        );
        assert!(ids.contains(&dependency["source_id"].as_i64().unwrap()));
        assert!(ids.contains(&dependency["target_id"].as_i64().unwrap()));
        assert!(dependency["is_blocking"].is_boolean());
        assert!(dependency["output_types"].is_string() && dependency["description"].is_string());
    }
}

#[tokio::test]
async fn the_map_json_has_one_shape_from_postgres_and_from_the_graph() {
    let (app, _) = TestApp::with_demo().await;
    let (_, mut admin) = admin(&app).await;
    let tors = assert_status(&admin.get("/api/v1/tors").await, 200);
    let id = |name: &str| {
        tors["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let (board, finance, audit) = (id("board"), id("finance"), id("audit"));
    // The demo has three (finance and audit feed into the board, audit escalates to it).
    for (from, kind, to, blocking) in [
        (board, "feeds_into", finance, true),
        (audit, "feeds_into", finance, false),
        (finance, "escalates_to", board, false),
    ] {
        let r = admin
            .post_json(
                &format!("/api/v1/tors/{from}/dependencies"),
                &json!({"relation_type": kind, "target_id": to, "is_blocking": blocking,
                        "output_types": "reports", "description": "quarterly"}),
            )
            .await;
        assert_status(&r, 201);
    }
    let r = admin
        .send_json(
            Method::PUT,
            &format!("/api/v1/tors/{board}/cadence"),
            &json!({"meeting_cadence": "monthly", "cadence_day": "thursday", "cadence_week": "last"}),
        )
        .await;
    assert_status(&r, 200);

    let from_postgres = assert_status(&admin.get("/api/v1/governance").await, 200);
    assert_contract(&from_postgres);
    assert_eq!(from_postgres["dependencies"].as_array().unwrap().len(), 6);
    let board_json = from_postgres["tors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == board)
        .unwrap();
    assert_eq!(
        board_json["cadence"]["summary"],
        "The last Thursday of every month at 09:00 for 60 minutes"
    );
    assert!(
        board_json["my_capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("tor.view"))
    );

    // The same request answered from a current projection.
    let backend = FalkorBackend::connect(&falkordb_url().await, &unique_name("graph"))
        .await
        .unwrap();
    let projection = Projection::new(graph::Backend::Falkor(backend), "map-contract");
    projection.resync(app.pool()).await.unwrap();
    assert!(projection.current().is_some());
    // The projection carries each dependency with its properties.
    let edges = projection
        .backend()
        .unwrap()
        .edges("map-contract")
        .await
        .unwrap();
    let projected: Vec<_> = edges
        .iter()
        .filter(|e| e.relation_type == "feeds_into" || e.relation_type == "escalates_to")
        .collect();
    assert_eq!(projected.len(), 6);
    let blocking = projected
        .iter()
        .find(|e| e.source_id == board && e.target_id == finance)
        .unwrap();
    assert_eq!(blocking.properties["is_blocking"], json!("true"));
    assert_eq!(blocking.properties["output_types"], json!("reports"));
    assert_eq!(blocking.properties["description"], json!("quarterly"));
    let app = app.with_graph(projection);
    let (_, mut admin) = api_support::admin(&app).await;
    let from_graph = assert_status(&admin.get("/api/v1/governance").await, 200);
    assert_eq!(from_graph, from_postgres);

    // The node/edge view carries the dependencies with their blocking flag.
    let graph = assert_status(&admin.get("/api/v1/governance/graph").await, 200);
    let dependency_edges: Vec<&Value> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["relation"] == "feeds_into" || e["relation"] == "escalates_to")
        .collect();
    assert_eq!(dependency_edges.len(), 6);
    assert!(dependency_edges.iter().any(|e| e["is_blocking"] == true
        && e["source"] == format!("tor:{board}")
        && e["target"] == format!("tor:{finance}")));
}
