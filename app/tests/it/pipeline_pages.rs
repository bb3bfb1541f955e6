//! The pipeline's pages and forms as a browser posts them (session, CSRF token): who may see
//! and use each (403 pages otherwise), and mistakes answered with a readable page.

use crate::api_support;

use ahlt::domain::audit::Actor;
use ahlt::domain::kind;
use ahlt::domain::pipeline::agenda::{self, AgendaSource};
use ahlt::domain::pipeline::coa::{self, NewSection};
use ahlt::domain::pipeline::meetings::{self, NewMeeting};
use ahlt::domain::pipeline::{items, minutes, workflow};
use ahlt::test_app::ADMIN_PASSWORD;
use ahlt::test_app::{TestApp, TestClient, TestResponse};
use api_support::{PASSWORD, create_user};
use axum::http::{StatusCode, header};

fn assert_html(r: &TestResponse, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text());
    let content_type = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(content_type.starts_with("text/html"), "{content_type}");
}

async fn logged_in(app: &TestApp, username: &str) -> TestClient {
    let mut client = app.client();
    let r = client.login(username, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    client
}

/// Ids of one of everything, made by the system on a board chaired by `chair`.
struct World {
    tor: i64,
    suggestion: i64,
    meeting: i64,
    point: i64,
    minutes: i64,
    section: i64,
    action: i64,
    transition: i64,
    chair: i64,
}

async fn world(app: &TestApp) -> World {
    let chair = create_user(app, "chair", &[]).await;
    let member = create_user(app, "member", &[]).await;
    create_user(app, "outsider", &[]).await;
    let actor = Actor::system();
    let mut tx = app.pool().begin().await.unwrap();
    let tor = crate::pipeline_api::board_tor(&mut tx, chair, member).await;
    let suggestion = items::submit(&mut tx, &actor, kind::SUGGESTION, tor, "Idea", "")
        .await
        .unwrap();
    let new = NewMeeting {
        date: "2031-02-03".into(),
        ..Default::default()
    };
    let meeting = meetings::create_meeting(&mut tx, &actor, tor, &new)
        .await
        .unwrap();
    let source = AgendaSource::Point {
        title: "Budget".into(),
        description: String::new(),
    };
    let point = agenda::schedule(&mut tx, &actor, meeting, &source)
        .await
        .unwrap();
    let section = NewSection {
        title: "Cost".into(),
        body: "some".into(),
    };
    coa::add_coa(&mut tx, &actor, point, "Spend", "", &[section])
        .await
        .unwrap();
    for to in ["confirmed", "in_progress"] {
        workflow::apply(&mut tx, &actor, meeting, to, None)
            .await
            .unwrap();
    }
    let minutes_id = minutes::generate(&mut tx, &actor, meeting).await.unwrap();
    let section = minutes::detail(&mut tx, minutes_id).await.unwrap().sections[0].id;
    let action = minutes::add_action_item(&mut tx, &actor, minutes_id, "Do it", chair, "")
        .await
        .unwrap();
    let transition = workflow::transitions(&mut *tx).await.unwrap()[0].id;
    tx.commit().await.unwrap();
    World {
        tor,
        suggestion,
        meeting,
        point,
        minutes: minutes_id,
        section,
        action,
        transition,
        chair,
    }
}

#[tokio::test]
async fn pages_and_forms_refuse_whoever_lacks_the_capability() {
    let app = TestApp::new().await;
    let w = world(&app).await;
    let mut outsider = logged_in(&app, "outsider").await;
    for page in [
        format!("/tors/{}/pipeline", w.tor),
        format!("/meetings/{}", w.meeting),
        format!("/minutes/{}", w.minutes),
        format!("/minutes/{}/print", w.minutes),
        "/workflow".to_owned(),
    ] {
        assert_html(&outsider.get(&page).await, StatusCode::FORBIDDEN);
    }
    let r = outsider
        .post_form(
            &format!("/tors/{}/suggestions", w.tor),
            &[("title", "Let me in")],
        )
        .await;
    assert_html(&r, StatusCode::FORBIDDEN);

    let mut member = logged_in(&app, "member").await;
    // The member edits their own suggestion only.
    let own = member
        .post_form(
            &format!("/tors/{}/suggestions", w.tor),
            &[("title", "Mine"), ("description", "first")],
        )
        .await;
    assert_eq!(own.status, StatusCode::SEE_OTHER, "{}", own.text());
    let own: i64 = sqlx::query_scalar(
        "SELECT id FROM entities WHERE entity_type = 'suggestion' AND label = 'Mine'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    let page = member.get(&format!("/tors/{}/pipeline", w.tor)).await;
    assert!(
        page.text()
            .contains(&format!("action=\"/items/{own}/edit\""))
    );
    assert!(
        !page
            .text()
            .contains(&format!("action=\"/items/{}/edit\"", w.suggestion))
    );
    let r = member
        .post_form(
            &format!("/items/{own}/edit"),
            &[("title", "Mine, better"), ("description", "second")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let r = member
        .post_form(
            &format!("/items/{}/edit", w.suggestion),
            &[("title", "Taken over")],
        )
        .await;
    assert_html(&r, StatusCode::FORBIDDEN);
    let title: String = sqlx::query_scalar("SELECT label FROM entities WHERE id = $1")
        .bind(own)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(title, "Mine, better");

    // The member sees the pipeline and may suggest, but is offered no moves.
    let page = member.get(&format!("/tors/{}/pipeline", w.tor)).await;
    assert_html(&page, StatusCode::OK);
    assert!(page.text().contains("id=\"new-suggestion\""));
    assert!(!page.text().contains("data-move=\"accepted\""));
    assert!(!page.text().contains("id=\"new-meeting\""));
    let refused: Vec<(String, Vec<(&str, String)>)> = vec![
        (
            format!("/tors/{}/meetings", w.tor),
            vec![("date", "2031-03-01".into())],
        ),
        (
            format!("/items/{}/move", w.suggestion),
            vec![("to", "accepted".into())],
        ),
        (
            format!("/items/{}/move", w.meeting),
            vec![("to", "completed".into())],
        ),
        (
            format!("/meetings/{}/agenda", w.meeting),
            vec![("title", "Mine".into())],
        ),
        (
            format!("/meetings/{}/attendance", w.meeting),
            vec![
                ("user_id", w.chair.to_string()),
                ("attendance", "present".into()),
            ],
        ),
        (format!("/meetings/{}/minutes", w.meeting), vec![]),
        (
            format!("/minutes/{}/sections/{}", w.minutes, w.section),
            vec![("body", "mine".into())],
        ),
        (
            format!("/minutes/{}/action-items", w.minutes),
            vec![
                ("description", "x".into()),
                ("owner_id", w.chair.to_string()),
            ],
        ),
        (
            format!("/items/{}/coas", w.point),
            vec![("title", "Mine".into())],
        ),
        (
            format!("/items/{}/opinions", w.point),
            vec![("text", "mine".into())],
        ),
        (
            format!("/workflow/transitions/{}", w.transition),
            vec![("required_capability", "tor.view".into())],
        ),
        (
            format!("/items/{}/delete", w.meeting),
            vec![("confirm", "yes".into())],
        ),
        (format!("/action-items/{}/done", w.action), vec![]),
    ];
    for (path, fields) in refused {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = member.post_form(&path, &fields).await;
        assert_html(&r, StatusCode::FORBIDDEN);
    }
    // Nothing changed.
    let status: String = sqlx::query_scalar(
        "SELECT value #>> '{}' FROM entity_properties WHERE entity_id = $1 AND key = 'status'",
    )
    .bind(w.meeting)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(status, "in_progress");
}

#[tokio::test]
async fn the_chair_moves_items_and_mistakes_get_a_readable_page() {
    let app = TestApp::new().await;
    let w = world(&app).await;
    let mut chair = logged_in(&app, "chair").await;
    let page = chair.get(&format!("/tors/{}/pipeline", w.tor)).await;
    assert_html(&page, StatusCode::OK);
    assert!(page.text().contains("data-move=\"accepted\""));

    // A rejection without its reason: 422, shown as a page, nothing changed.
    let r = chair
        .post_form(
            &format!("/items/{}/move", w.suggestion),
            &[("to", "rejected"), ("outcome", "")],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("needs an outcome"), "{}", r.text());
    let r = chair
        .post_form(
            &format!("/items/{}/move", w.suggestion),
            &[("to", "accepted")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.location(),
        Some(format!("/tors/{}/pipeline", w.tor).as_str())
    );
    let page = chair.get(&format!("/tors/{}/pipeline", w.tor)).await;
    assert!(page.text().contains("Idea"), "the proposal is listed");
    assert!(page.text().contains("data-move=\"submitted\""));

    // Deleting asks first, then goes back to the pipeline.
    let other = {
        let mut tx = app.pool().begin().await.unwrap();
        let id = items::submit(
            &mut tx,
            &Actor::system(),
            kind::SUGGESTION,
            w.tor,
            "Doomed",
            "",
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let page = chair.get(&format!("/tors/{}/pipeline", w.tor)).await;
    assert!(page.text().contains(&format!("data-delete=\"{other}\"")));
    let r = chair
        .post_form(&format!("/items/{other}/delete"), &[])
        .await;
    assert_html(&r, StatusCode::OK);
    assert!(
        r.text().contains("Delete the suggestion Doomed?"),
        "{}",
        r.text()
    );
    let r = chair
        .post_form(&format!("/items/{other}/delete"), &[("confirm", "yes")])
        .await;
    assert_eq!(
        r.location(),
        Some(format!("/tors/{}/pipeline", w.tor).as_str())
    );
    let gone: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM entities WHERE id = $1)")
        .bind(other)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(gone);

    // A refusal shows before the question: the meeting is in progress.
    let r = chair
        .post_form(&format!("/items/{}/delete", w.meeting), &[])
        .await;
    assert_html(&r, StatusCode::CONFLICT);

    // A bad date is a 422 page; a meeting at a taken time a 409 page.
    let r = chair
        .post_form(
            &format!("/tors/{}/meetings", w.tor),
            &[("date", "tomorrow")],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = chair
        .post_form(
            &format!("/tors/{}/meetings", w.tor),
            &[("date", "2031-02-03"), ("time", "09:00")],
        )
        .await;
    assert_html(&r, StatusCode::CONFLICT);

    // The owner closes their action item from the dashboard.
    let dashboard = chair.get("/").await;
    assert!(dashboard.text().contains("Do it"));
    let r = chair
        .post_form(&format!("/action-items/{}/done", w.action), &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let dashboard = chair.get("/").await;
    assert!(dashboard.text().contains("Nothing assigned to you."));

    // The printable minutes: the document with its stylesheet.
    let print = chair.get(&format!("/minutes/{}/print", w.minutes)).await;
    assert_html(&print, StatusCode::OK);
    assert!(print.text().contains("/static/print.css"));
    let css = chair.get("/static/print.css").await;
    assert!(css.text().contains("@media print"));
}

#[tokio::test]
async fn an_administrator_changes_a_transitions_gate_on_the_workflow_page() {
    let app = TestApp::new().await;
    let w = world(&app).await;
    let mut admin = app.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let page = admin.get("/workflow").await;
    assert_html(&page, StatusCode::OK);
    assert!(
        page.text()
            .contains(&format!("id=\"transition-{}\"", w.transition))
    );
    let path = format!("/workflow/transitions/{}", w.transition);
    let r = admin
        .post_form(&path, &[("required_capability", "tor.fly")])
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin
        .post_form(
            &path,
            &[
                ("required_capability", "tor.view"),
                ("requires_outcome", "on"),
            ],
        )
        .await;
    assert_eq!(r.location(), Some("/workflow"));
    let changed = workflow::transitions(app.pool())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.id == w.transition)
        .unwrap();
    assert_eq!(changed.required_capability.as_str(), "tor.view");
    assert!(changed.requires_outcome);
}
