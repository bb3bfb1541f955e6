//! The meeting pipeline through the JSON API on a real PostgreSQL: the whole cycle from a
//! suggestion to distributed minutes, every move allowed and refused by the workflow data,
//! the capability each route needs (403 without it), and deletes that cascade or refuse.

use crate::api_support;

use ahlt::domain::audit::Actor;
use ahlt::domain::tors::{self, NewFunction, NewTor};
use ahlt::test_app::{TestApp, TestClient};
use api_support::*;
use axum::http::Method;
use serde_json::{Value, json};

/// A ToR whose chair may do everything in the pipeline and whose member may only view.
pub(crate) struct Board {
    pub(crate) tor: i64,
    pub(crate) chair_id: i64,
    pub(crate) chair: TestClient,
    pub(crate) member_id: i64,
    pub(crate) member: TestClient,
    /// No role, no position.
    pub(crate) outsider: TestClient,
    admin: TestClient,
}

/// The ToR "board" with a chair function (every meeting capability) held by `chair` and a
/// member function (`tor.view`) held by `member`.
pub(crate) async fn board_tor(tx: &mut sqlx::PgConnection, chair: i64, member: i64) -> i64 {
    let actor = Actor::system();

    let new = NewTor {
        name: "board".into(),
        label: "Board".into(),
        description: String::new(),
        parent_id: None,
    };
    let tor = tors::create(&mut *tx, &actor, &new).await.unwrap().id;
    for (slug, caps, holder) in [
        (
            "chair",
            &[
                "tor.view",
                "meeting.call",
                "agenda.set",
                "decision.approve",
                "decision.vote",
                "minutes.record",
            ][..],
            chair,
        ),
        ("member", &["tor.view"][..], member),
    ] {
        let f = NewFunction {
            slug: slug.into(),
            label: slug.into(),
            description: String::new(),
            capabilities: caps.iter().map(|c| c.parse().unwrap()).collect(),
        };
        let f = tors::add_function(&mut *tx, &actor, tor, &f).await.unwrap();
        tors::assign(&mut *tx, &actor, f.id, holder).await.unwrap();
    }
    tor
}

pub(crate) async fn board(app: &TestApp) -> Board {
    let (chair_id, chair) = user(app, "chair", &[]).await;
    let (member_id, member) = user(app, "member", &[]).await;
    let (_, outsider) = user(app, "outsider", &[]).await;
    let (_, admin) = admin(app).await;
    let mut tx = app.pool().begin().await.unwrap();
    let tor = board_tor(&mut tx, chair_id, member_id).await;
    tx.commit().await.unwrap();
    Board {
        tor,
        chair_id,
        chair,
        member_id,
        member,
        outsider,
        admin,
    }
}

pub(crate) async fn transition(
    client: &mut TestClient,
    id: i64,
    to: &str,
    outcome: Option<&str>,
) -> Value {
    let r = client
        .post_json(
            &format!("/api/v1/items/{id}/transitions"),
            &json!({"to": to, "outcome": outcome}),
        )
        .await;
    assert_status(&r, 200)
}

pub(crate) async fn created_id(client: &mut TestClient, path: &str, body: Value) -> i64 {
    let r = client.post_json(path, &body).await;
    assert_status(&r, 201)["id"].as_i64().unwrap()
}

/// An approved proposal in the board's queue.
async fn approved_proposal(b: &mut Board, title: &str) -> i64 {
    let p = created_id(
        &mut b.member,
        &format!("/api/v1/tors/{}/proposals", b.tor),
        json!({"title": title}),
    )
    .await;
    transition(&mut b.member, p, "submitted", None).await;
    transition(&mut b.chair, p, "under_review", None).await;
    transition(&mut b.chair, p, "approved", None).await;
    p
}

pub(crate) async fn meeting(b: &mut Board, date: &str) -> i64 {
    created_id(
        &mut b.chair,
        &format!("/api/v1/tors/{}/meetings", b.tor),
        json!({"date": date, "time": "10:00", "location": "Room 1"}),
    )
    .await
}

#[tokio::test]
async fn a_suggestion_goes_all_the_way_to_distributed_minutes() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let tor = b.tor;

    // Member suggests; only the chair (agenda.set) may accept.
    let s = created_id(
        &mut b.member,
        &format!("/api/v1/tors/{tor}/suggestions"),
        json!({"title": "Buy a new projector", "description": "The old one flickers"}),
    )
    .await;
    let r = b
        .member
        .post_json(
            &format!("/api/v1/items/{s}/transitions"),
            &json!({"to": "accepted"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let accepted = transition(&mut b.chair, s, "accepted", None).await;
    assert_eq!(accepted["status"], "accepted");

    // Accepting created a draft proposal carrying the suggestion's text and author.
    let proposals = assert_status(
        &b.member
            .get(&format!("/api/v1/tors/{tor}/proposals?status=draft"))
            .await,
        200,
    );
    assert_eq!(proposals["items"].as_array().unwrap().len(), 1);
    let p = proposals["items"][0]["id"].as_i64().unwrap();
    assert_eq!(proposals["items"][0]["title"], "Buy a new projector");
    assert_eq!(proposals["items"][0]["description"], "The old one flickers");

    // The member (its author, through the suggestion) submits; the chair reviews and approves.
    transition(&mut b.member, p, "submitted", None).await;
    let r = b
        .member
        .post_json(
            &format!("/api/v1/items/{p}/transitions"),
            &json!({"to": "under_review"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    transition(&mut b.chair, p, "under_review", None).await;
    transition(&mut b.chair, p, "approved", None).await;
    let queue = assert_status(
        &b.member
            .get(&format!("/api/v1/tors/{tor}/agenda-queue"))
            .await,
        200,
    );
    assert_eq!(queue["items"][0]["id"], p);

    // Scheduled into a meeting: the proposal leaves the queue.
    let m = meeting(&mut b, "2031-03-04").await;
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/meetings/{m}/agenda"),
            &json!({"proposal_id": p}),
        )
        .await;
    let point = assert_status(&r, 201)["id"].as_i64().unwrap();
    let queue = assert_status(
        &b.member
            .get(&format!("/api/v1/tors/{tor}/agenda-queue"))
            .await,
        200,
    );
    assert_eq!(queue["items"], json!([]));
    let proposal = assert_status(&b.member.get(&format!("/api/v1/items/{p}")).await, 200);
    assert_eq!(proposal["status"], "scheduled");

    // Nothing is decided before the meeting starts.
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/items/{point}/transitions"),
            &json!({"to": "decided", "outcome": "Buy it"}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    transition(&mut b.chair, m, "confirmed", None).await;
    transition(&mut b.chair, m, "in_progress", None).await;

    // Roll call.
    for (who, attendance) in [(b.chair_id, "present"), (b.member_id, "excused")] {
        let r = b
            .chair
            .send_json(
                Method::PUT,
                &format!("/api/v1/meetings/{m}/attendance/{who}"),
                &json!({"attendance": attendance}),
            )
            .await;
        assert_status(&r, 200);
    }

    // A decision needs its text; then the proposal is decided too.
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/items/{point}/transitions"),
            &json!({"to": "decided"}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    transition(&mut b.chair, point, "decided", Some("Buy it within budget")).await;
    let detail = assert_status(&b.member.get(&format!("/api/v1/meetings/{m}")).await, 200);
    assert_eq!(detail["agenda"][0]["status"], "decided");
    assert_eq!(
        detail["agenda"][0]["decision"]["description"],
        "Buy it within budget"
    );
    assert_eq!(detail["agenda"][0]["proposal_id"], p);
    let proposal = assert_status(&b.member.get(&format!("/api/v1/items/{p}")).await, 200);
    assert_eq!(proposal["status"], "decided");
    transition(&mut b.chair, m, "completed", None).await;

    // Minutes: a scaffold from what the meeting recorded.
    let r = b
        .chair
        .post_json(&format!("/api/v1/meetings/{m}/minutes"), &json!({}))
        .await;
    let minutes = assert_status(&r, 201);
    let mid = minutes["id"].as_i64().unwrap();
    assert_eq!(minutes["status"], "draft");
    let section = |kind: &str| {
        minutes["sections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["properties"]["section_kind"] == kind)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        section("attendance")["description"],
        "Present: CHAIR\nExcused: MEMBER"
    );
    assert_eq!(section("agenda")["description"], "1. Buy a new projector");
    assert_eq!(
        section("decisions")["description"],
        "Buy a new projector: Buy it within budget"
    );
    let again = b
        .chair
        .post_json(&format!("/api/v1/meetings/{m}/minutes"), &json!({}))
        .await;
    assert_error(&again, 409, "conflict");

    // Edit a section; add an action item for the member.
    let notes = section("notes")["id"].as_i64().unwrap();
    let r = b
        .chair
        .send_json(
            Method::PUT,
            &format!("/api/v1/minutes/{mid}/sections/{notes}"),
            &json!({"body": "Short meeting."}),
        )
        .await;
    assert_eq!(assert_status(&r, 200)["description"], "Short meeting.");
    let action = created_id(
        &mut b.chair,
        &format!("/api/v1/minutes/{mid}/action-items"),
        json!({"description": "Get three quotes", "owner_id": b.member_id, "due_date": "2031-03-20"}),
    )
    .await;
    let mine = assert_status(&b.member.get("/api/v1/me/pipeline").await, 200);
    assert_eq!(mine["action_items"][0]["id"], action);
    assert_eq!(
        mine["action_items"][0]["properties"]["due_date"],
        "2031-03-20"
    );

    // Approve (decision.approve), then distribute (minutes.record); approved minutes are frozen.
    let r = b
        .member
        .post_json(
            &format!("/api/v1/items/{mid}/transitions"),
            &json!({"to": "approved"}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    transition(&mut b.chair, mid, "approved", None).await;
    let r = b
        .chair
        .send_json(
            Method::PUT,
            &format!("/api/v1/minutes/{mid}/sections/{notes}"),
            &json!({"body": "changed afterwards"}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    transition(&mut b.chair, mid, "distributed", None).await;

    // The owner closes their action item.
    let r = b
        .member
        .send_json(
            Method::PATCH,
            &format!("/api/v1/action-items/{action}"),
            &json!({"done": true}),
        )
        .await;
    assert_eq!(assert_status(&r, 200)["status"], "done");
    let mine = assert_status(&b.member.get("/api/v1/me/pipeline").await, 200);
    assert_eq!(mine["action_items"], json!([]));

    // Every state change is in the audit log, by whom it was made.
    for (action, actor) in [
        ("suggestion.accepted", b.chair_id),
        ("proposal.submitted", b.member_id),
        ("proposal.approved", b.chair_id),
        ("proposal.scheduled", b.chair_id),
        ("agenda_point.decided", b.chair_id),
        ("decision.create", b.chair_id),
        ("meeting.attendance", b.chair_id),
        ("minutes.create", b.chair_id),
        ("minutes.section.update", b.chair_id),
        ("minutes.distributed", b.chair_id),
        ("action_item.done", b.member_id),
    ] {
        let entries = audit(&app, action).await;
        assert!(
            entries.iter().any(|(a, _, _)| *a == Some(actor)),
            "{action} by {actor}: {entries:?}"
        );
    }
}

#[tokio::test]
async fn moves_follow_the_workflow_data_which_an_administrator_can_change() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let s = created_id(
        &mut b.member,
        &format!("/api/v1/tors/{}/suggestions", b.tor),
        json!({"title": "Idea"}),
    )
    .await;
    // No transition from open to approved: 409 naming the possible moves.
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/items/{s}/transitions"),
            &json!({"to": "approved"}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    assert!(r.text().contains("accepted"), "{}", r.text());
    // A rejection needs a reason.
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/items/{s}/transitions"),
            &json!({"to": "rejected", "outcome": "  "}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    // The available moves are listed with the item.
    let item = assert_status(&b.member.get(&format!("/api/v1/items/{s}")).await, 200);
    let moves: Vec<&str> = item["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(moves, ["accepted", "rejected"]);

    // Let members accept suggestions: change the transition's capability.
    let workflow = assert_status(&b.member.get("/api/v1/workflow").await, 200);
    let accept = workflow["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["scope"] == "suggestion" && t["to"] == "accepted")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/workflow/transitions/{accept}");
    let body = json!({"required_capability": "tor.view"});
    assert_error(
        &b.chair.send_json(Method::PATCH, &path, &body).await,
        403,
        "forbidden",
    );
    assert_error(
        &b.admin
            .send_json(
                Method::PATCH,
                &path,
                &json!({"required_capability": "tor.fly"}),
            )
            .await,
        422,
        "validation_failed",
    );
    assert_status(&b.admin.send_json(Method::PATCH, &path, &body).await, 204);
    assert_eq!(audit(&app, "workflow.transition.update").await.len(), 1);
    let done = transition(&mut b.member, s, "accepted", None).await;
    assert_eq!(done["status"], "accepted");
    // Terminal: nothing more.
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/items/{s}/transitions"),
            &json!({"to": "rejected", "outcome": "late"}),
        )
        .await;
    assert_error(&r, 409, "conflict");

    // Cancelling a meeting needs a reason and returns its open points to the queue.
    let p = approved_proposal(&mut b, "Budget").await;
    let m = meeting(&mut b, "2031-05-06").await;
    assert_status(
        &b.chair
            .post_json(
                &format!("/api/v1/meetings/{m}/agenda"),
                &json!({"proposal_id": p}),
            )
            .await,
        201,
    );
    // Only approved proposals are scheduled.
    let again = b
        .chair
        .post_json(
            &format!("/api/v1/meetings/{m}/agenda"),
            &json!({"proposal_id": p}),
        )
        .await;
    assert_error(&again, 409, "conflict");
    transition(&mut b.chair, m, "cancelled", Some("No quorum")).await;
    let proposal = assert_status(&b.member.get(&format!("/api/v1/items/{p}")).await, 200);
    assert_eq!(proposal["status"], "approved");
    let detail = assert_status(&b.member.get(&format!("/api/v1/meetings/{m}")).await, 200);
    assert_eq!(detail["agenda"][0]["status"], "deferred");
    assert_eq!(detail["outcome"], "No quorum");

    // A meeting that ends without reaching a point gives its proposal back to the queue too.
    let m2 = meeting(&mut b, "2031-05-07").await;
    assert_status(
        &b.chair
            .post_json(
                &format!("/api/v1/meetings/{m2}/agenda"),
                &json!({"proposal_id": p}),
            )
            .await,
        201,
    );
    for to in ["confirmed", "in_progress", "completed"] {
        transition(&mut b.chair, m2, to, None).await;
    }
    let proposal = assert_status(&b.member.get(&format!("/api/v1/items/{p}")).await, 200);
    assert_eq!(proposal["status"], "approved");
    let detail = assert_status(&b.member.get(&format!("/api/v1/meetings/{m2}")).await, 200);
    assert_eq!(detail["agenda"][0]["status"], "deferred");
}

#[tokio::test]
async fn every_pipeline_route_needs_its_capability() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let tor = b.tor;
    let s = created_id(
        &mut b.member,
        &format!("/api/v1/tors/{tor}/suggestions"),
        json!({"title": "Idea"}),
    )
    .await;
    let p = approved_proposal(&mut b, "Plan").await;
    let m = meeting(&mut b, "2031-06-07").await;
    transition(&mut b.chair, m, "confirmed", None).await;
    transition(&mut b.chair, m, "in_progress", None).await;
    let point = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/agenda"),
        json!({"title": "Any other business"}),
    )
    .await;
    let minutes = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/minutes"),
        json!({}),
    )
    .await;
    let detail = assert_status(
        &b.chair.get(&format!("/api/v1/minutes/{minutes}")).await,
        200,
    );
    let section = detail["sections"][0]["id"].as_i64().unwrap();
    let action = created_id(
        &mut b.chair,
        &format!("/api/v1/minutes/{minutes}/action-items"),
        json!({"description": "Follow up", "owner_id": b.chair_id}),
    )
    .await;

    // The outsider may not even read.
    for path in [
        format!("/api/v1/tors/{tor}/suggestions"),
        format!("/api/v1/tors/{tor}/proposals"),
        format!("/api/v1/tors/{tor}/agenda-queue"),
        format!("/api/v1/tors/{tor}/meetings"),
        format!("/api/v1/tors/{tor}/meeting-slots"),
        format!("/api/v1/items/{s}"),
        format!("/api/v1/meetings/{m}"),
        format!("/api/v1/minutes/{minutes}"),
    ] {
        assert_error(&b.outsider.get(&path).await, 403, "forbidden");
    }
    assert_error(
        &b.outsider
            .post_json(
                &format!("/api/v1/tors/{tor}/suggestions"),
                &json!({"title": "x"}),
            )
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &b.outsider
            .send_json(
                Method::PATCH,
                &format!("/api/v1/items/{s}"),
                &json!({"title": "renamed"}),
            )
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &b.outsider
            .post_json(
                &format!("/api/v1/tors/{tor}/proposals"),
                &json!({"title": "x"}),
            )
            .await,
        403,
        "forbidden",
    );

    // The member may read and suggest, but not run the meeting.
    let member_refused: Vec<(Method, String, Value)> = vec![
        (
            Method::POST,
            format!("/api/v1/tors/{tor}/meetings"),
            json!({"date": "2031-07-01"}),
        ),
        (
            Method::POST,
            format!("/api/v1/meetings/{m}/agenda"),
            json!({"proposal_id": p}),
        ),
        (
            Method::PUT,
            format!("/api/v1/meetings/{m}/attendance/{}", b.member_id),
            json!({"attendance": "present"}),
        ),
        (
            Method::POST,
            format!("/api/v1/items/{point}/transitions"),
            json!({"to": "decided", "outcome": "yes"}),
        ),
        (
            Method::POST,
            format!("/api/v1/items/{m}/transitions"),
            json!({"to": "completed"}),
        ),
        (
            Method::PUT,
            format!("/api/v1/minutes/{minutes}/sections/{section}"),
            json!({"body": "mine"}),
        ),
        (
            Method::POST,
            format!("/api/v1/minutes/{minutes}/action-items"),
            json!({"description": "x", "owner_id": b.member_id}),
        ),
        (
            Method::PATCH,
            format!("/api/v1/action-items/{action}"),
            json!({"done": true}),
        ),
        (
            Method::POST,
            format!("/api/v1/items/{s}/transitions"),
            json!({"to": "accepted"}),
        ),
    ];
    for (method, path, body) in member_refused {
        let r = b.member.send_json(method.clone(), &path, &body).await;
        assert_error(&r, 403, "forbidden");
    }
    assert_error(
        &b.member.delete(&format!("/api/v1/items/{m}")).await,
        403,
        "forbidden",
    );
    assert_error(
        &b.member
            .post_json(&format!("/api/v1/meetings/{m}/minutes"), &json!({}))
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &b.member
            .send_json(
                Method::PATCH,
                "/api/v1/workflow/transitions/1",
                &json!({"requires_outcome": true}),
            )
            .await,
        403,
        "forbidden",
    );
    // A global permission of the capability's name is the administrator's override.
    let r = b
        .admin
        .post_json(
            &format!("/api/v1/items/{point}/transitions"),
            &json!({"to": "decided", "outcome": "Agreed"}),
        )
        .await;
    assert_eq!(assert_status(&r, 200)["status"], "decided");
}

#[tokio::test]
async fn deletes_cascade_or_refuse_with_a_reason() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let tor = b.tor;
    // An accepted suggestion stays as its proposal's origin.
    let s = created_id(
        &mut b.member,
        &format!("/api/v1/tors/{tor}/suggestions"),
        json!({"title": "Idea"}),
    )
    .await;
    transition(&mut b.chair, s, "accepted", None).await;
    assert_error(
        &b.member.delete(&format!("/api/v1/items/{s}")).await,
        409,
        "conflict",
    );
    // An author deletes their own open suggestion.
    let own = created_id(
        &mut b.member,
        &format!("/api/v1/tors/{tor}/suggestions"),
        json!({"title": "Mine"}),
    )
    .await;
    assert_status(&b.member.delete(&format!("/api/v1/items/{own}")).await, 204);
    assert_error(
        &b.member.get(&format!("/api/v1/items/{own}")).await,
        404,
        "not_found",
    );

    // A scheduled proposal cannot go; deleting the (unheld) meeting returns it to the queue
    // and removes the meeting's agenda points.
    let p = approved_proposal(&mut b, "Budget").await;
    let m = meeting(&mut b, "2031-08-09").await;
    let point = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/agenda"),
        json!({"proposal_id": p}),
    )
    .await;
    // Its author may delete a proposal, but not one on an agenda.
    assert_error(
        &b.member.delete(&format!("/api/v1/items/{p}")).await,
        409,
        "conflict",
    );
    assert_status(&b.chair.delete(&format!("/api/v1/items/{m}")).await, 204);
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM entities WHERE id = $1)")
        .bind(point)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(!exists, "the agenda point went with its meeting");
    let proposal = assert_status(&b.chair.get(&format!("/api/v1/items/{p}")).await, 200);
    assert_eq!(proposal["status"], "approved");

    // A held meeting is part of the record; draft minutes go with their sections.
    let held = meeting(&mut b, "2031-08-10").await;
    transition(&mut b.chair, held, "confirmed", None).await;
    transition(&mut b.chair, held, "in_progress", None).await;
    let minutes = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{held}/minutes"),
        json!({}),
    )
    .await;
    assert_error(
        &b.chair.delete(&format!("/api/v1/items/{held}")).await,
        409,
        "conflict",
    );
    assert_status(
        &b.chair.delete(&format!("/api/v1/items/{minutes}")).await,
        204,
    );
    let sections: i64 =
        sqlx::query_scalar("SELECT count(*) FROM entities WHERE entity_type = 'minutes_section'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(sections, 0);

    // The ToR cannot be deleted while it holds pipeline items.
    assert_error(
        &b.admin.delete(&format!("/api/v1/tors/{tor}")).await,
        409,
        "conflict",
    );
    // Nor can pipeline items be written around the workflow.
    let r = b
        .admin
        .send_json(
            Method::PATCH,
            &format!("/api/v1/entities/{p}"),
            &json!({"properties": {"status": "decided"}}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");
    assert_eq!(audit(&app, "meeting.delete").await.len(), 1);
    assert_eq!(audit(&app, "minutes.delete").await.len(), 1);
}

#[tokio::test]
async fn meetings_come_from_the_cadence_and_never_double_book() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let tor = b.tor;
    let r = b
        .admin
        .send_json(
            Method::PUT,
            &format!("/api/v1/tors/{tor}/cadence"),
            &json!({"meeting_cadence": "weekly", "cadence_day": "tuesday", "cadence_time": "14:30", "default_location": "Boardroom"}),
        )
        .await;
    assert_status(&r, 200);
    let slots = assert_status(
        &b.member
            .get(&format!(
                "/api/v1/tors/{tor}/meeting-slots?from=2031-01-01&days=14"
            ))
            .await,
        200,
    );
    assert_eq!(
        slots["items"],
        json!([
            {"date": "2031-01-07", "time": "14:30", "duration_minutes": 60, "location": "Boardroom"},
            {"date": "2031-01-14", "time": "14:30", "duration_minutes": 60, "location": "Boardroom"},
        ])
    );
    // A meeting on a slot takes the cadence's time and place, and the slot is gone.
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/tors/{tor}/meetings"),
            &json!({"date": "2031-01-07"}),
        )
        .await;
    let m = assert_status(&r, 201);
    assert_eq!(m["properties"]["meeting_time"], "14:30");
    assert_eq!(m["properties"]["location"], "Boardroom");
    assert_eq!(m["status"], "projected");
    let slots = assert_status(
        &b.member
            .get(&format!(
                "/api/v1/tors/{tor}/meeting-slots?from=2031-01-01&days=14"
            ))
            .await,
        200,
    );
    assert_eq!(slots["items"].as_array().unwrap().len(), 1);
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/tors/{tor}/meetings"),
            &json!({"date": "2031-01-07", "time": "14:30"}),
        )
        .await;
    assert_error(&r, 409, "conflict");
    for bad in [
        json!({"date": "7 Jan"}),
        json!({"date": "2031-01-08", "time": "25:00"}),
        json!({"date": "2031-01-08", "duration_minutes": 0}),
    ] {
        let r = b
            .chair
            .post_json(&format!("/api/v1/tors/{tor}/meetings"), &bad)
            .await;
        assert_error(&r, 422, "validation_failed");
    }
    let listed = walk(&mut b.member, &format!("/api/v1/tors/{tor}/meetings"), 1).await;
    assert_eq!(listed.len(), 1);

    // The outlook shows the planned meeting in place of its projection, an extra meeting
    // beside the projections, and no meeting where one was cancelled.
    let planned = m["id"].as_i64().unwrap();
    let extra = created_id(
        &mut b.chair,
        &format!("/api/v1/tors/{tor}/meetings"),
        json!({"date": "2031-01-09", "time": "08:00"}),
    )
    .await;
    let cancelled = created_id(
        &mut b.chair,
        &format!("/api/v1/tors/{tor}/meetings"),
        json!({"date": "2031-01-14"}),
    )
    .await;
    transition(&mut b.chair, cancelled, "cancelled", Some("holiday")).await;
    transition(&mut b.chair, planned, "confirmed", None).await;
    let outlook = assert_status(
        &b.member
            .get("/api/v1/tors/outlook?from=2031-01-01&days=14")
            .await,
        200,
    );
    let seen: Vec<(String, String, Value, Value)> = outlook["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["date"].as_str().unwrap().to_owned(),
                m["start_time"].as_str().unwrap().to_owned(),
                m["meeting_id"].clone(),
                m["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                "2031-01-07".into(),
                "14:30".into(),
                json!(planned),
                json!("confirmed")
            ),
            (
                "2031-01-09".into(),
                "08:00".into(),
                json!(extra),
                json!("projected")
            ),
        ]
    );
}

#[tokio::test]
async fn courses_of_action_and_opinions_belong_to_an_open_point() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let p = approved_proposal(&mut b, "New portal").await;
    let m = meeting(&mut b, "2031-09-10").await;
    let point = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/agenda"),
        json!({"proposal_id": p}),
    )
    .await;
    let coa_path = format!("/api/v1/items/{point}/coas");
    assert_error(
        &b.member
            .post_json(&coa_path, &json!({"title": "Mine"}))
            .await,
        403,
        "forbidden",
    );
    let buy = created_id(
        &mut b.chair,
        &coa_path,
        json!({"title": "Buy", "description": "Hosted",
               "sections": [{"title": "Cost", "body": "12k"}, {"title": "Risk", "body": "lock-in"}]}),
    )
    .await;
    let build = created_id(&mut b.chair, &coa_path, json!({"title": "Build"})).await;

    // One opinion per member and point: giving it again replaces it.
    let opinion_path = format!("/api/v1/items/{point}/opinions");
    assert_error(
        &b.member
            .post_json(&opinion_path, &json!({"preferred_coa_id": buy}))
            .await,
        403,
        "forbidden",
    );
    let first = b
        .chair
        .post_json(
            &opinion_path,
            &json!({"preferred_coa_id": buy, "text": "cheaper"}),
        )
        .await;
    let first = assert_status(&first, 200)["id"].as_i64().unwrap();
    let again = b
        .chair
        .post_json(
            &opinion_path,
            &json!({"preferred_coa_id": build, "text": "on reflection"}),
        )
        .await;
    assert_eq!(assert_status(&again, 200)["id"], first);
    let detail = assert_status(&b.member.get(&format!("/api/v1/meetings/{m}")).await, 200);
    let entry = &detail["agenda"][0];
    assert_eq!(entry["coas"][0]["title"], "Buy");
    assert_eq!(entry["coas"][0]["sections"][1]["description"], "lock-in");
    assert_eq!(entry["coas"][0]["preferred_by"], 0);
    assert_eq!(entry["coas"][1]["preferred_by"], 1);
    assert_eq!(entry["opinions"].as_array().unwrap().len(), 1);
    assert_eq!(entry["opinions"][0]["description"], "on reflection");
    assert_eq!(entry["opinions"][0]["by"]["id"], b.chair_id);

    // A section is edited by whoever sets the agenda; a COA of another point is refused.
    let section = entry["coas"][0]["sections"][0]["id"].as_i64().unwrap();
    let section_path = format!("/api/v1/coas/{buy}/sections/{section}");
    assert_error(
        &b.member
            .send_json(Method::PUT, &section_path, &json!({"body": "free"}))
            .await,
        403,
        "forbidden",
    );
    let r = b
        .chair
        .send_json(Method::PUT, &section_path, &json!({"body": "11k"}))
        .await;
    assert_eq!(assert_status(&r, 200)["description"], "11k");
    let other = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/agenda"),
        json!({"title": "Other"}),
    )
    .await;
    let r = b
        .chair
        .post_json(
            &format!("/api/v1/items/{other}/opinions"),
            &json!({"preferred_coa_id": buy}),
        )
        .await;
    assert_error(&r, 422, "validation_failed");

    // A preferred COA stays; another goes with its sections.
    assert_error(
        &b.chair.delete(&format!("/api/v1/items/{build}")).await,
        409,
        "conflict",
    );
    assert_status(&b.chair.delete(&format!("/api/v1/items/{buy}")).await, 204);
    let sections: i64 =
        sqlx::query_scalar("SELECT count(*) FROM entities WHERE entity_type = 'coa_section'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(sections, 0);

    // Decided points are closed to new COAs and opinions.
    transition(&mut b.chair, m, "confirmed", None).await;
    transition(&mut b.chair, m, "in_progress", None).await;
    transition(&mut b.chair, point, "decided", Some("Build it")).await;
    assert_error(
        &b.chair
            .post_json(&coa_path, &json!({"title": "Late"}))
            .await,
        409,
        "conflict",
    );
    assert_error(
        &b.chair
            .post_json(&opinion_path, &json!({"text": "late"}))
            .await,
        409,
        "conflict",
    );

    // Deleting an unheld meeting takes its points' COAs and opinions along.
    let unheld = meeting(&mut b, "2031-09-11").await;
    let p2 = approved_proposal(&mut b, "Second").await;
    let point2 = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{unheld}/agenda"),
        json!({"proposal_id": p2}),
    )
    .await;
    let coa2 = created_id(
        &mut b.chair,
        &format!("/api/v1/items/{point2}/coas"),
        json!({"title": "Only option", "sections": [{"title": "Why"}]}),
    )
    .await;
    assert_status(
        &b.chair
            .post_json(
                &format!("/api/v1/items/{point2}/opinions"),
                &json!({"preferred_coa_id": coa2}),
            )
            .await,
        200,
    );
    assert_status(
        &b.chair.delete(&format!("/api/v1/items/{unheld}")).await,
        204,
    );
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM entities WHERE entity_type IN ('coa', 'coa_section', 'opinion', 'agenda_point') \
         AND id >= $1",
    )
    .bind(point2)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(left, 0, "nothing of the deleted meeting is left");
    assert_eq!(audit(&app, "coa.section.update").await.len(), 1);
    assert_eq!(audit(&app, "opinion.update").await.len(), 1);
}

#[tokio::test]
async fn concurrent_moves_of_one_item_serialise() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let s = created_id(
        &mut b.member,
        &format!("/api/v1/tors/{}/suggestions", b.tor),
        json!({"title": "Twice"}),
    )
    .await;
    // Two accepts at once: one wins, the other finds the suggestion accepted.
    let path = format!("/api/v1/items/{s}/transitions");
    let (mut one, mut two) = (b.chair.clone(), b.chair.clone());
    let body = json!({"to": "accepted"});
    let (r1, r2) = tokio::join!(one.post_json(&path, &body), two.post_json(&path, &body));
    let mut codes = [r1.status.as_u16(), r2.status.as_u16()];
    codes.sort();
    assert_eq!(codes, [200, 409]);
    let proposals: i64 =
        sqlx::query_scalar("SELECT count(*) FROM entities WHERE entity_type = 'proposal'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(proposals, 1, "one accepted suggestion, one proposal");

    // One proposal scheduled into two meetings at once: on one agenda only.
    let p = approved_proposal(&mut b, "Once").await;
    let (m1, m2) = (
        meeting(&mut b, "2031-10-01").await,
        meeting(&mut b, "2031-10-02").await,
    );
    let body = json!({"proposal_id": p});
    let (p1, p2) = (
        format!("/api/v1/meetings/{m1}/agenda"),
        format!("/api/v1/meetings/{m2}/agenda"),
    );
    let (r1, r2) = tokio::join!(one.post_json(&p1, &body), two.post_json(&p2, &body));
    let mut codes = [r1.status.as_u16(), r2.status.as_u16()];
    codes.sort();
    assert_eq!(codes, [201, 409]);
    let points: i64 =
        sqlx::query_scalar("SELECT count(*) FROM entities WHERE entity_type = 'agenda_point'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(points, 1);
}

#[tokio::test]
async fn an_item_outside_any_tor_is_left_out_not_an_error() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    // As an import of upstream data without its relations would leave it.
    let mut conn = app.pool().acquire().await.unwrap();
    let orphan = ahlt::store::create_entity(
        &mut conn,
        &ahlt::store::NewEntity::new("suggestion", "imported").property("status", "open"),
    )
    .await
    .unwrap()
    .entity
    .id;
    drop(conn);
    assert_error(
        &b.admin.get(&format!("/api/v1/items/{orphan}")).await,
        404,
        "not_found",
    );
    let mine = assert_status(&b.chair.get("/api/v1/me/pipeline").await, 200);
    assert_eq!(mine["waiting"], json!([]));
}
