//! Draft minutes refreshed from their meeting (late roll call and decisions reach the
//! generated sections; hand edits are kept unless replaced on purpose), and action items
//! closed by an owner from outside the committee.

use crate::api_support;
use crate::pipeline_api::{board, created_id, meeting, transition};

use ahlt::test_app::TestApp;
use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

/// The sections of minutes `id` by kind: (section id, text).
fn sections(detail: &Value) -> Vec<(String, i64, String)> {
    detail["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["properties"]["section_kind"].as_str().unwrap().to_owned(),
                s["id"].as_i64().unwrap(),
                s["description"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn section_text(detail: &Value, kind: &str) -> String {
    sections(detail)
        .into_iter()
        .find(|(k, _, _)| k == kind)
        .map(|(_, _, text)| text)
        .unwrap_or_else(|| panic!("no section {kind}: {detail}"))
}

#[tokio::test]
async fn draft_minutes_refresh_from_the_meeting_and_keep_hand_edits() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let m = meeting(&mut b, "2031-03-04").await;
    transition(&mut b.chair, m, "confirmed", None).await;
    transition(&mut b.chair, m, "in_progress", None).await;
    let budget = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/agenda"),
        json!({"title": "Budget"}),
    )
    .await;
    let minutes = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/minutes"),
        json!({}),
    )
    .await;
    let path = format!("/api/v1/minutes/{minutes}");
    let refresh = format!("/api/v1/minutes/{minutes}/refresh");
    let before = assert_status(&b.chair.get(&path).await, 200);
    assert!(!section_text(&before, "attendance").contains("Present"));
    assert_eq!(section_text(&before, "decisions"), "");

    // After the minutes were started: the roll call, a decision, and hand edits.
    let r = b
        .chair
        .send_json(
            Method::PUT,
            &format!("/api/v1/meetings/{m}/attendance/{}", b.member_id),
            &json!({"attendance": "present"}),
        )
        .await;
    assert_status(&r, 200);
    transition(&mut b.chair, budget, "decided", Some("Spend 5k on chairs")).await;
    for (kind, body) in [
        ("agenda", "1. Budget (moved up)"),
        ("notes", "Coffee ran out"),
    ] {
        let (_, id, _) = sections(&before)
            .into_iter()
            .find(|(k, _, _)| k == kind)
            .unwrap();
        let r = b
            .chair
            .send_json(
                Method::PUT,
                &format!("{path}/sections/{id}"),
                &json!({"body": body}),
            )
            .await;
        assert_status(&r, 200);
    }

    // Without the capability: 403, nothing refreshed.
    assert_error(
        &b.member.post_json(&refresh, &json!({})).await,
        403,
        "forbidden",
    );
    assert_error(
        &b.outsider.post_json(&refresh, &json!({})).await,
        403,
        "forbidden",
    );
    let unchanged = assert_status(&b.chair.get(&path).await, 200);
    assert!(!section_text(&unchanged, "attendance").contains("Present"));

    let report = assert_status(&b.chair.post_json(&refresh, &json!({})).await, 200);
    assert_eq!(report["refreshed"], json!(["Attendance", "Decisions"]));
    assert_eq!(report["kept_edited"], json!(["Agenda"]));
    let after = assert_status(&b.chair.get(&path).await, 200);
    assert!(
        section_text(&after, "attendance").contains("Present: MEMBER"),
        "{after}"
    );
    assert_eq!(
        section_text(&after, "decisions"),
        "Budget: Spend 5k on chairs"
    );
    assert_eq!(section_text(&after, "agenda"), "1. Budget (moved up)");
    assert_eq!(section_text(&after, "notes"), "Coffee ran out");

    // A late agenda point; replacing the edited agenda is asked for explicitly.
    created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/agenda"),
        json!({"title": "Late item"}),
    )
    .await;
    let report = assert_status(
        &b.chair
            .post_json(&refresh, &json!({"overwrite_edited": true}))
            .await,
        200,
    );
    assert_eq!(report["refreshed"], json!(["Agenda"]));
    assert_eq!(report["unchanged"], json!(["Attendance", "Decisions"]));
    let after = assert_status(&b.chair.get(&path).await, 200);
    assert_eq!(section_text(&after, "agenda"), "1. Budget\n2. Late item");
    assert_eq!(section_text(&after, "notes"), "Coffee ran out");

    // Nothing new: nothing rewritten, no audit entry.
    let report = assert_status(&b.chair.post_json(&refresh, &json!({})).await, 200);
    assert_eq!(report["refreshed"], json!([]));
    let entries = audit(&app, "minutes.refresh").await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries
            .iter()
            .all(|(actor, target, _)| { *actor == Some(b.chair_id) && *target == Some(minutes) })
    );

    // The page says which sections are generated and offers the refresh to the secretary.
    let r = b
        .chair
        .send_json(
            Method::PUT,
            &format!("/api/v1/meetings/{m}/attendance/{}", b.chair_id),
            &json!({"attendance": "excused"}),
        )
        .await;
    assert_status(&r, 200);
    let mut secretary = app.client();
    secretary.login("chair", PASSWORD).await;
    let page = secretary.get(&format!("/minutes/{minutes}")).await.text();
    assert_eq!(page.matches("generated from the meeting</span>").count(), 3);
    assert!(page.contains("id=\"refresh-minutes\""));
    let mut viewer = app.client();
    viewer.login("member", PASSWORD).await;
    let page = viewer.get(&format!("/minutes/{minutes}")).await.text();
    assert!(!page.contains("id=\"refresh-minutes\""));
    let r = viewer
        .post_form(&format!("/minutes/{minutes}/refresh"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = secretary
        .post_form(&format!("/minutes/{minutes}/refresh"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = secretary.get(&format!("/minutes/{minutes}")).await.text();
    assert!(
        page.contains("Refreshed from the meeting: Attendance."),
        "{page}"
    );
    assert!(page.contains("Excused: CHAIR"), "{page}");

    // Approved minutes are the record: no more refreshing.
    transition(&mut b.chair, minutes, "approved", None).await;
    assert_error(
        &b.chair.post_json(&refresh, &json!({})).await,
        409,
        "conflict",
    );
    assert_error(
        &b.chair
            .post_json(&refresh, &json!({"overwrite": true}))
            .await,
        400,
        "invalid_json",
    );
}

#[tokio::test]
async fn an_owner_outside_the_committee_closes_only_their_own_action_item() {
    let app = TestApp::new().await;
    let mut b = board(&app).await;
    let (helper_id, mut helper) = user(&app, "helper", &[]).await;
    let m = meeting(&mut b, "2031-05-06").await;
    transition(&mut b.chair, m, "confirmed", None).await;
    transition(&mut b.chair, m, "in_progress", None).await;
    let minutes = created_id(
        &mut b.chair,
        &format!("/api/v1/meetings/{m}/minutes"),
        json!({}),
    )
    .await;
    let add = format!("/api/v1/minutes/{minutes}/action-items");
    let theirs = created_id(
        &mut b.chair,
        &add,
        json!({"description": "Book the hall", "owner_id": helper_id}),
    )
    .await;
    let chairs = created_id(
        &mut b.chair,
        &add,
        json!({"description": "Write the letter", "owner_id": b.chair_id}),
    )
    .await;

    // The helper sees nothing of the ToR...
    assert_error(
        &helper.get(&format!("/api/v1/minutes/{minutes}")).await,
        403,
        "forbidden",
    );
    // ... but closes their own item, and reopens it.
    let done = |v: bool| json!({"done": v});
    let r = helper
        .send_json(
            Method::PATCH,
            &format!("/api/v1/action-items/{theirs}"),
            &done(true),
        )
        .await;
    assert_eq!(assert_status(&r, 200)["status"], "done");
    let r = helper
        .send_json(
            Method::PATCH,
            &format!("/api/v1/action-items/{theirs}"),
            &done(false),
        )
        .await;
    assert_eq!(assert_status(&r, 200)["status"], "open");
    // Someone else's item, or one that does not exist: refused.
    let r = helper
        .send_json(
            Method::PATCH,
            &format!("/api/v1/action-items/{chairs}"),
            &done(true),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = helper
        .send_json(Method::PATCH, "/api/v1/action-items/999999999", &done(true))
        .await;
    assert_error(&r, 404, "not_found");
    let status: String = sqlx::query_scalar(
        "SELECT value #>> '{}' FROM entity_properties WHERE entity_id = $1 AND key = 'status'",
    )
    .bind(chairs)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(status, "open");
    let entries = audit(&app, "action_item.done").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, Some(helper_id));

    // The same from the browser: the dashboard lists the item, the form closes it.
    let mut browser = app.client();
    let r = browser.login("helper", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(browser.get("/").await.text().contains("Book the hall"));
    let r = browser
        .post_form(&format!("/action-items/{chairs}/done"), &[])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = browser
        .post_form(&format!("/action-items/{theirs}/done"), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    // (The flash names the item; the list is empty.)
    assert!(
        browser
            .get("/")
            .await
            .text()
            .contains("Nothing assigned to you.")
    );
    assert_eq!(audit(&app, "action_item.done").await.len(), 2);
}
