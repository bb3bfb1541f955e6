//! JSON API v1: ToRs, functions, holders, ABAC answers and the governance map.

use crate::api_support;

use ahlt::domain::role;
use ahlt::test_app::{TestApp, TestClient};
use api_support::*;
use axum::http::Method;
use serde_json::{Value, json};

async fn create_tor(client: &mut TestClient, name: &str, parent: Option<i64>) -> i64 {
    let r = client
        .post_json(
            "/api/v1/tors",
            &json!({"name": name, "label": name.to_uppercase(), "parent_id": parent}),
        )
        .await;
    assert_status(&r, 201)["id"].as_i64().unwrap()
}

async fn create_function(client: &mut TestClient, tor: i64, slug: &str, caps: &[&str]) -> i64 {
    let r = client
        .post_json(
            &format!("/api/v1/tors/{tor}/functions"),
            &json!({"slug": slug, "capabilities": caps}),
        )
        .await;
    assert_status(&r, 201)["id"].as_i64().unwrap()
}

fn holder_ids(function: &Value) -> Vec<i64> {
    function["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_i64().unwrap())
        .collect()
}

async fn allowed(client: &mut TestClient, user: i64, capability: &str, tor: i64) -> bool {
    let r = client
        .get(&format!(
            "/api/v1/abac/check?user_id={user}&capability={capability}&tor_id={tor}"
        ))
        .await;
    assert_status(&r, 200)["allowed"].as_bool().unwrap()
}

#[tokio::test]
async fn a_tor_is_created_detailed_patched_and_deleted_with_audit_entries() {
    let app = TestApp::new().await;
    let (admin_id, mut admin) = admin(&app).await;
    let board = create_tor(&mut admin, "board", None).await;
    let r = admin
        .post_json(
            "/api/v1/tors",
            &json!({"name": "finance", "label": "Finance", "description": "Money", "parent_id": board}),
        )
        .await;
    let finance = assert_status(&r, 201);
    let id = finance["id"].as_i64().unwrap();
    assert_eq!(r.location(), Some(format!("/api/v1/tors/{id}").as_str()));
    assert_eq!(finance["parent_id"], board);
    assert_eq!(finance["description"], "Money");
    assert_eq!(finance["functions"], json!([]));

    let list = assert_status(&admin.get("/api/v1/tors").await, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);

    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tors/{id}"),
            &json!({"label": "Finance Committee", "parent_id": null}),
        )
        .await;
    let patched = assert_status(&r, 200);
    assert_eq!(patched["label"], "Finance Committee");
    assert!(patched["parent_id"].is_null());
    assert_eq!(patched["description"], "Money", "absent fields stay");

    create_function(&mut admin, id, "chair", &["meeting.call"]).await;
    assert_status(&admin.delete(&format!("/api/v1/tors/{id}")).await, 204);
    assert_error(
        &admin.get(&format!("/api/v1/tors/{id}")).await,
        404,
        "not_found",
    );
    for action in ["tor.create", "tor.update", "tor.delete"] {
        let entries = audit(&app, action).await;
        assert!(
            entries
                .iter()
                .any(|e| e.1 == Some(id) && e.0 == Some(admin_id)),
            "{action}: {entries:?}"
        );
    }
}

#[tokio::test]
async fn tor_mistakes_are_rejected_with_stable_codes() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let board = create_tor(&mut admin, "board", None).await;
    let child = create_tor(&mut admin, "child", Some(board)).await;
    assert_error(
        &admin
            .post_json("/api/v1/tors", &json!({"name": "board"}))
            .await,
        409,
        "conflict",
    );
    let cases = [
        (json!({"name": "Bad Name"}), 422, "validation_failed"),
        (
            json!({"name": "x", "parent_id": 987654}),
            422,
            "validation_failed",
        ),
        (json!({"name": "x", "parent_id": 0}), 400, "invalid_json"),
        (json!({"name": "x", "chair": "me"}), 400, "invalid_json"),
        (json!({"label": "no name"}), 400, "invalid_json"),
    ];
    for (body, status, code) in cases {
        assert_error(&admin.post_json("/api/v1/tors", &body).await, status, code);
    }
    // A ToR cannot report to one below it.
    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tors/{board}"),
            &json!({"parent_id": child}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    for bad in ["abc", "-4", "0"] {
        assert_error(
            &admin.get(&format!("/api/v1/tors/{bad}")).await,
            400,
            "bad_request",
        );
    }
    assert_error(&admin.get("/api/v1/tors/987654").await, 404, "not_found");
    assert_error(
        &admin
            .send_json(Method::PATCH, "/api/v1/tors/987654", &json!({"label": "x"}))
            .await,
        404,
        "not_found",
    );
    assert_error(&admin.delete("/api/v1/tors/987654").await, 404, "not_found");
}

#[tokio::test]
async fn functions_and_holders_are_managed_within_their_tor() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let rosa = create_user(&app, "rosa", &[]).await;
    let board = create_tor(&mut admin, "board", None).await;
    let other = create_tor(&mut admin, "other", None).await;

    let r = admin
        .post_json(
            &format!("/api/v1/tors/{board}/functions"),
            &json!({"slug": "chair", "label": "Chair", "capabilities": ["meeting.call", "agenda.set"]}),
        )
        .await;
    let chair = assert_status(&r, 201);
    let fid = chair["id"].as_i64().unwrap();
    assert_eq!(
        r.location(),
        Some(format!("/api/v1/tors/{board}/functions/{fid}").as_str())
    );
    assert_eq!(chair["capabilities"], json!(["meeting.call", "agenda.set"]));
    let fpath = format!("/api/v1/tors/{board}/functions/{fid}");
    assert_eq!(
        assert_status(&admin.get(&fpath).await, 200)["slug"],
        "chair"
    );

    let r = admin
        .send_json(
            Method::PATCH,
            &fpath,
            &json!({"label": "Chairperson", "capabilities": ["decision.vote"]}),
        )
        .await;
    let patched = assert_status(&r, 200);
    assert_eq!(patched["label"], "Chairperson");
    assert_eq!(patched["capabilities"], json!(["decision.vote"]));

    let r = admin
        .request(Method::PUT, &format!("{fpath}/holders/{rosa}"), None, true)
        .await;
    assert_eq!(holder_ids(&assert_status(&r, 200)), vec![rosa]);
    // Idempotent.
    let r = admin
        .request(Method::PUT, &format!("{fpath}/holders/{rosa}"), None, true)
        .await;
    assert_eq!(holder_ids(&assert_status(&r, 200)), vec![rosa]);
    let detail = assert_status(&admin.get(&format!("/api/v1/tors/{board}")).await, 200);
    assert_eq!(holder_ids(&detail["functions"][0]), vec![rosa]);
    assert_eq!(detail["member_count"], 1);

    // The same function addressed through another ToR does not exist.
    let wrong = format!("/api/v1/tors/{other}/functions/{fid}");
    assert_error(&admin.get(&wrong).await, 404, "not_found");
    assert_error(
        &admin
            .send_json(Method::PATCH, &wrong, &json!({"label": "x"}))
            .await,
        404,
        "not_found",
    );
    assert_error(&admin.delete(&wrong).await, 404, "not_found");
    assert_error(
        &admin
            .request(Method::PUT, &format!("{wrong}/holders/{rosa}"), None, true)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &admin
            .request(Method::PUT, &format!("{fpath}/holders/987654"), None, true)
            .await,
        404,
        "not_found",
    );

    assert_status(&admin.delete(&format!("{fpath}/holders/{rosa}")).await, 204);
    assert!(holder_ids(&assert_status(&admin.get(&fpath).await, 200)).is_empty());
    assert_status(&admin.delete(&fpath).await, 204);
    assert_error(&admin.get(&fpath).await, 404, "not_found");

    for action in [
        "tor.function.create",
        "tor.function.update",
        "tor.position.assign",
        "tor.position.vacate",
        "tor.function.delete",
    ] {
        assert_eq!(audit(&app, action).await.len(), 1, "{action}");
    }
}

#[tokio::test]
async fn unknown_capabilities_are_422_naming_the_bad_value() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let board = create_tor(&mut admin, "board", None).await;
    let r = admin
        .post_json(
            &format!("/api/v1/tors/{board}/functions"),
            &json!({"slug": "chair", "capabilities": ["meeting.call", "world.domination"]}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text().contains("world.domination"), "{}", r.text());
    let fid = create_function(&mut admin, board, "chair", &[]).await;
    let r = admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tors/{board}/functions/{fid}"),
            &json!({"capabilities": ["tor.delete"]}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text().contains("tor.delete"), "{}", r.text());
    let r = admin
        .get(&format!("/api/v1/abac/check?capability=fly&tor_id={board}"))
        .await;
    assert_error(&r, 422, "validation_failed");
    assert!(r.text().contains("fly"), "{}", r.text());
    let r = admin
        .post_json(
            &format!("/api/v1/tors/{board}/functions"),
            &json!({"slug": "x", "capabilities": "meeting.call"}),
        )
        .await;
    assert_error(&r, 400, "invalid_json");
}

#[tokio::test]
async fn abac_answers_follow_roles_and_positions_and_their_removal() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (sam, mut sam_client) = user(&app, "sam", &[role::VIEWER]).await;
    let (_, mut stranger) = user(&app, "tess", &[]).await;
    let board = create_tor(&mut admin, "board", None).await;
    let finance = create_tor(&mut admin, "finance", Some(board)).await;
    let secretary = create_function(&mut admin, board, "secretary", &["minutes.record"]).await;

    // From the viewer role: tor.view everywhere. Nothing from positions yet.
    assert!(allowed(&mut admin, sam, "tor.view", finance).await);
    assert!(!allowed(&mut admin, sam, "minutes.record", board).await);

    let holder = format!("/api/v1/tors/{board}/functions/{secretary}/holders/{sam}");
    assert_status(&admin.request(Method::PUT, &holder, None, true).await, 200);
    assert!(allowed(&mut admin, sam, "minutes.record", board).await);
    assert!(
        !allowed(&mut admin, sam, "minutes.record", finance).await,
        "only on that ToR"
    );
    // The user may ask about themself (user_id defaults to the caller).
    let r = sam_client
        .get(&format!(
            "/api/v1/abac/check?capability=minutes.record&tor_id={board}"
        ))
        .await;
    assert_eq!(assert_status(&r, 200), json!({"allowed": true}));
    let caps = assert_status(
        &sam_client
            .get(&format!("/api/v1/tors/{board}/capabilities"))
            .await,
        200,
    );
    assert_eq!(caps["user_id"], sam);
    assert_eq!(caps["capabilities"], json!(["tor.view", "minutes.record"]));

    // Removing the capability from the function, or the user from it, takes it away.
    let fpath = format!("/api/v1/tors/{board}/functions/{secretary}");
    admin
        .send_json(Method::PATCH, &fpath, &json!({"capabilities": []}))
        .await;
    assert!(!allowed(&mut admin, sam, "minutes.record", board).await);
    admin
        .send_json(
            Method::PATCH,
            &fpath,
            &json!({"capabilities": ["minutes.record"]}),
        )
        .await;
    assert!(allowed(&mut admin, sam, "minutes.record", board).await);
    assert_status(&admin.delete(&holder).await, 204);
    assert!(!allowed(&mut admin, sam, "minutes.record", board).await);

    // Removing the role takes the role-derived capability away.
    admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/users/{sam}"),
            &json!({"roles": []}),
        )
        .await;
    assert!(!allowed(&mut admin, sam, "tor.view", board).await);

    // Asking about someone else needs users.view; unknown things are 404, missing params 400.
    let r = stranger
        .get(&format!(
            "/api/v1/abac/check?user_id={sam}&capability=tor.view&tor_id={board}"
        ))
        .await;
    assert_error(&r, 403, "forbidden");
    let r = stranger
        .get(&format!("/api/v1/tors/{board}/capabilities?user_id={sam}"))
        .await;
    assert_error(&r, 403, "forbidden");
    assert_error(
        &admin
            .get("/api/v1/abac/check?capability=tor.view&tor_id=987654")
            .await,
        404,
        "not_found",
    );
    assert_error(
        &admin
            .get(&format!(
                "/api/v1/abac/check?user_id=987654&capability=tor.view&tor_id={board}"
            ))
            .await,
        404,
        "not_found",
    );
    assert_error(
        &admin.get("/api/v1/abac/check?capability=tor.view").await,
        400,
        "bad_request",
    );
    assert_error(
        &admin
            .get(&format!(
                "/api/v1/abac/check?capability=tor.view&tor_id={board}&x=1"
            ))
            .await,
        400,
        "bad_request",
    );
    assert_error(
        &admin.get("/api/v1/tors/987654/capabilities").await,
        404,
        "not_found",
    );
}

#[tokio::test]
async fn position_capabilities_let_members_edit_their_own_tor_only_within_their_rights() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let (uma, mut uma_client) = user(&app, "uma", &[]).await;
    let vic = create_user(&app, "vic", &[]).await;
    let board = create_tor(&mut admin, "board", None).await;
    let other = create_tor(&mut admin, "other", None).await;
    let lead = create_function(
        &mut admin,
        board,
        "lead",
        &["tor.view", "tor.edit", "members.manage", "decision.vote"],
    )
    .await;
    let approver = create_function(&mut admin, board, "approver", &["decision.approve"]).await;
    admin
        .request(
            Method::PUT,
            &format!("/api/v1/tors/{board}/functions/{lead}/holders/{uma}"),
            None,
            true,
        )
        .await;

    // tor.view from the position opens the ToR's detail, but not the list of all ToRs.
    assert_status(&uma_client.get(&format!("/api/v1/tors/{board}")).await, 200);
    assert_error(&uma_client.get("/api/v1/tors").await, 403, "forbidden");
    assert_error(
        &uma_client.get(&format!("/api/v1/tors/{other}")).await,
        403,
        "forbidden",
    );

    // tor.edit: functions of this ToR, with capabilities the member holds there.
    let r = uma_client
        .post_json(
            &format!("/api/v1/tors/{board}/functions"),
            &json!({"slug": "member", "capabilities": ["decision.vote"]}),
        )
        .await;
    let member = assert_status(&r, 201)["id"].as_i64().unwrap();
    let r = uma_client
        .post_json(
            &format!("/api/v1/tors/{board}/functions"),
            &json!({"slug": "boss", "capabilities": ["decision.approve"]}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = uma_client
        .send_json(
            Method::PATCH,
            &format!("/api/v1/tors/{board}/functions/{member}"),
            &json!({"capabilities": ["decision.vote", "decision.approve"]}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = uma_client
        .post_json(
            &format!("/api/v1/tors/{other}/functions"),
            &json!({"slug": "x"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");

    // members.manage: fill positions whose capabilities the member holds.
    let r = uma_client
        .request(
            Method::PUT,
            &format!("/api/v1/tors/{board}/functions/{member}/holders/{vic}"),
            None,
            true,
        )
        .await;
    assert_eq!(holder_ids(&assert_status(&r, 200)), vec![vic]);
    let r = uma_client
        .request(
            Method::PUT,
            &format!("/api/v1/tors/{board}/functions/{approver}/holders/{uma}"),
            None,
            true,
        )
        .await;
    assert_error(&r, 403, "forbidden");
    assert_status(
        &uma_client
            .delete(&format!(
                "/api/v1/tors/{board}/functions/{member}/holders/{vic}"
            ))
            .await,
        204,
    );

    // ToRs themselves need tors.manage.
    assert_error(
        &uma_client
            .send_json(
                Method::PATCH,
                &format!("/api/v1/tors/{board}"),
                &json!({"label": "Mine"}),
            )
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &uma_client.delete(&format!("/api/v1/tors/{board}")).await,
        403,
        "forbidden",
    );
    assert_error(
        &uma_client
            .post_json("/api/v1/tors", &json!({"name": "new"}))
            .await,
        403,
        "forbidden",
    );

    // Losing the position loses the rights.
    admin
        .delete(&format!(
            "/api/v1/tors/{board}/functions/{lead}/holders/{uma}"
        ))
        .await;
    let r = uma_client
        .delete(&format!("/api/v1/tors/{board}/functions/{member}"))
        .await;
    assert_error(&r, 403, "forbidden");
    assert_error(
        &uma_client.get(&format!("/api/v1/tors/{board}")).await,
        403,
        "forbidden",
    );
}

#[tokio::test]
async fn the_governance_map_and_graph_show_tors_functions_and_holders() {
    let app = TestApp::new().await;
    let (_, mut admin) = admin(&app).await;
    let wes = create_user(&app, "wes", &[]).await;
    let board = create_tor(&mut admin, "board", None).await;
    let finance = create_tor(&mut admin, "finance", Some(board)).await;
    let chair = create_function(&mut admin, finance, "chair", &["meeting.call"]).await;
    admin
        .request(
            Method::PUT,
            &format!("/api/v1/tors/{finance}/functions/{chair}/holders/{wes}"),
            None,
            true,
        )
        .await;

    let map = assert_status(&admin.get("/api/v1/governance").await, 200);
    let tors = map["tors"].as_array().unwrap();
    assert_eq!(tors.len(), 2);
    let fin = tors.iter().find(|t| t["id"] == finance).unwrap();
    assert_eq!(fin["parent_id"], board);
    assert_eq!(holder_ids(&fin["functions"][0]), vec![wes]);

    let graph = assert_status(&admin.get("/api/v1/governance/graph").await, 200);
    let edges = graph["edges"].as_array().unwrap();
    for (source, target, relation) in [
        (
            format!("tor:{finance}"),
            format!("tor:{board}"),
            "reports_to",
        ),
        (
            format!("function:{chair}"),
            format!("tor:{finance}"),
            "belongs_to_tor",
        ),
        (
            format!("user:{wes}"),
            format!("function:{chair}"),
            "fills_position",
        ),
    ] {
        assert!(
            edges.contains(&json!({"source": source, "target": target, "relation": relation})),
            "{graph}"
        );
    }
    assert_eq!(graph["nodes"].as_array().unwrap().len(), 4);

    let (_, mut nobody) = user(&app, "xena", &[]).await;
    assert_error(&nobody.get("/api/v1/governance").await, 403, "forbidden");
    assert_error(
        &nobody.get("/api/v1/governance/graph").await,
        403,
        "forbidden",
    );
    assert_error(
        &app.client().get("/api/v1/governance").await,
        401,
        "unauthenticated",
    );
    let r = admin.get("/api/v1/governance").await;
    assert_no_secrets(&app, &r).await;
}
