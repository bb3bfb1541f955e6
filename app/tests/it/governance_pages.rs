//! ToR pages, the governance map, the entity browser and HTML error pages, against a real
//! PostgreSQL with the demo data. Requests authenticate with bearer tokens (the login page is
//! not part of this suite); CSRF for cookie sessions is checked separately.

use std::collections::BTreeSet;

use ahlt::auth::tokens;
use ahlt::domain::audit::Actor;
use ahlt::domain::tors::{self, NewFunction, TorFunction};
use ahlt::domain::users::{self, NewUser};
use ahlt::domain::{Capability, kind};
use ahlt::store::{self, NewEntity};
use ahlt::test_app::{ADMIN_PASSWORD, TestApp, TestClient, TestResponse};
use axum::http::{Method, StatusCode, header};

async fn user_id(app: &TestApp, username: &str) -> i64 {
    users::find_by_username(app.pool(), username)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("user {username}"))
        .id
}

async fn client_for(app: &TestApp, username: &str) -> TestClient {
    let id = user_id(app, username).await;
    let (_, secret) = tokens::create(app.pool(), id, "test").await.unwrap();
    app.client().with_bearer(&secret)
}

/// A user with the given roles (none: no permissions at all).
async fn new_user(app: &TestApp, username: &str, roles: &[&str]) -> i64 {
    let mut conn = app.pool().acquire().await.unwrap();
    users::create(
        &mut conn,
        &Actor::system(),
        &NewUser {
            username: username.into(),
            display_name: format!("{username} display"),
            email: None,
            password: "a-long-enough-password".into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        },
    )
    .await
    .unwrap()
    .id
}

async fn tor_id(app: &TestApp, name: &str) -> i64 {
    store::find_entity(app.pool(), kind::TOR, name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("ToR {name}"))
        .id
}

async fn functions_of(app: &TestApp, tor: i64) -> Vec<TorFunction> {
    tors::functions(app.pool(), Some(&[tor])).await.unwrap()
}

async fn function_id(app: &TestApp, tor: i64, slug: &str) -> i64 {
    functions_of(app, tor)
        .await
        .into_iter()
        .find(|f| f.slug == slug)
        .unwrap_or_else(|| panic!("function {slug}"))
        .id
}

/// Gives `username` a new position on `tor` with exactly `caps`.
async fn give_position(app: &TestApp, tor: i64, slug: &str, caps: &[Capability], username: &str) {
    let mut conn = app.pool().acquire().await.unwrap();
    let f = tors::add_function(
        &mut conn,
        &Actor::system(),
        tor,
        &NewFunction {
            slug: slug.into(),
            label: slug.into(),
            description: String::new(),
            capabilities: caps.iter().copied().collect(),
        },
    )
    .await
    .unwrap();
    let user = user_id(app, username).await;
    tors::assign(&mut conn, &Actor::system(), f.id, user)
        .await
        .unwrap();
}

fn assert_html(r: &TestResponse, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text());
    let content_type = r
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("text/html"),
        "expected HTML, got {content_type:?}: {}",
        r.text()
    );
}

fn assert_see_other(r: &TestResponse, to: &str) {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.location(), Some(to));
}

/// The markup between `start` and the next `end`.
fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} not in page"));
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

// ---- governance map and ToR pages (reading) ---------------------------------------------

#[tokio::test]
async fn governance_map_nests_every_demo_tor_with_its_functions_capabilities_and_holders() {
    let (app, _) = TestApp::with_demo().await;
    let mut bob = client_for(&app, "bob").await;
    let r = bob.get("/governance").await;
    assert_html(&r, StatusCode::OK);
    let html = r.text();
    for name in ["board", "finance", "audit"] {
        let id = tor_id(&app, name).await;
        assert!(html.contains(&format!("href=\"/tors/{id}\"")), "{name}");
    }
    for text in [
        "Board of Directors",
        "Finance Committee",
        "Audit Committee",
        "Chair",
        "Secretary",
        "Member",
        "Treasurer",
        "Alice Archer",
        "Bob Baker",
        "Carol Chen",
        "Dave Diaz",
        "decision.approve",
        "minutes.record",
    ] {
        assert!(html.contains(text), "{text} missing");
    }
    // The board's card, then its committees in a nested list inside the board's item.
    let board = section(&html, "Board of Directors", "</ul>\n</li>");
    assert!(board.contains("<ul class=\"tree\">"), "{board}");
    assert!(board.contains("Finance Committee") && board.contains("Audit Committee"));
    assert_eq!(html.matches("<ul class=\"tree\">").count(), 2);
    assert_eq!(
        html.matches("<ul class=\"tree\">").count(),
        html.matches("</ul>").count()
            - html.matches("<ul class=\"functions\">").count()
            - html.matches("<ul class=\"map-legend\">").count()
            - html.matches("<ul class=\"dependencies\">").count()
    );
}

#[tokio::test]
async fn tor_list_shows_the_hierarchy_with_function_and_member_counts() {
    let (app, _) = TestApp::with_demo().await;
    let mut bob = client_for(&app, "bob").await;
    let r = bob.get("/tors").await;
    assert_html(&r, StatusCode::OK);
    let html = r.text();
    let board = tor_id(&app, "board").await;
    let finance = tor_id(&app, "finance").await;
    let board_row = section(&html, &format!("href=\"/tors/{board}\""), "</tr>");
    assert!(board_row.contains("<td>3</td>"), "3 functions: {board_row}");
    assert!(board_row.contains("<td>4</td>"), "4 members: {board_row}");
    assert!(board_row.contains("active"));
    let finance_row = section(&html, &format!("href=\"/tors/{finance}\""), "</tr>");
    assert!(
        finance_row.contains("Board of Directors"),
        "reports to: {finance_row}"
    );
    assert!(html.find("Board of Directors").unwrap() < html.find("Finance Committee").unwrap());
    assert!(
        !html.contains("href=\"/tors/new\""),
        "viewers cannot create"
    );
}

#[tokio::test]
async fn tor_detail_shows_functions_holders_and_the_viewers_own_capabilities() {
    let (app, _) = TestApp::with_demo().await;
    let board = tor_id(&app, "board").await;
    let mut bob = client_for(&app, "bob").await;
    let r = bob.get(&format!("/tors/{board}")).await;
    assert_html(&r, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("Sets strategy and approves budgets."));
    assert!(html.contains("Finance Committee"), "children are listed");
    let chair = section(&html, "id=\"function-", "</section>");
    for text in [
        "Chair",
        "meeting.call",
        "agenda.set",
        "decision.approve",
        "Alice Archer",
    ] {
        assert!(chair.contains(text), "{text} missing from {chair}");
    }
    // Bob is the board's secretary (minutes, agenda) and a viewer (tor.view everywhere).
    let mine = section(&html, "Your capabilities here", "</p>");
    for cap in ["minutes.record", "agenda.set", "tor.view"] {
        assert!(mine.contains(cap), "{cap} missing from {mine}");
    }
    assert!(!mine.contains("tor.edit") && !mine.contains("decision.approve"));
    assert!(!html.contains("Add a function") && !html.contains("Delete ToR"));
    assert!(!html.contains("/vacate"), "bob cannot manage members");
}

// ---- managing ToRs ----------------------------------------------------------------------

#[tokio::test]
async fn admin_creates_a_tor_adds_edits_and_deletes_a_function_and_fills_and_vacates_it() {
    let (app, _) = TestApp::with_demo().await;
    let board = tor_id(&app, "board").await;
    let bob = user_id(&app, "bob").await;
    let mut admin = client_for(&app, "admin").await;

    let r = admin
        .post_form(
            "/tors",
            &[
                ("name", "ethics"),
                ("title", "Ethics Board"),
                ("description", "Keeps us honest."),
                ("parent_id", &board.to_string()),
            ],
        )
        .await;
    let id = tor_id(&app, "ethics").await;
    assert_see_other(&r, &format!("/tors/{id}"));
    let created = tors::summary(app.pool(), id).await.unwrap();
    assert_eq!(created.label, "Ethics Board");
    assert_eq!(created.parent_id, Some(board));
    let page = admin.get(&format!("/tors/{id}")).await;
    assert!(page.text().contains("Created ToR Ethics Board."), "flash");

    let r = admin
        .post_form(
            &format!("/tors/{id}/functions"),
            &[
                ("slug", "chair"),
                ("label", "Chair"),
                ("capabilities", "meeting.call"),
                ("capabilities", "decision.vote"),
            ],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{id}"));
    let f = functions_of(&app, id).await;
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].label, "Chair");
    assert_eq!(
        f[0].capabilities,
        vec![Capability::CallMeeting, Capability::Vote]
    );
    let fid = f[0].id;

    let r = admin
        .post_form(
            &format!("/tors/{id}/functions/{fid}/assign"),
            &[("user_id", &bob.to_string())],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{id}"));
    let holders = tors::function(app.pool(), fid).await.unwrap().holders;
    assert_eq!(holders.iter().map(|h| h.id).collect::<Vec<_>>(), vec![bob]);

    let r = admin
        .post_form(
            &format!("/tors/{id}/functions/{fid}"),
            &[
                ("label", "Chairperson"),
                ("description", "Runs meetings"),
                ("capabilities", "agenda.set"),
            ],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{id}"));
    let edited = tors::function(app.pool(), fid).await.unwrap();
    assert_eq!(edited.label, "Chairperson");
    assert_eq!(edited.description, "Runs meetings");
    assert_eq!(edited.capabilities, vec![Capability::SetAgenda]);

    let r = admin
        .post_form(
            &format!("/tors/{id}/functions/{fid}/vacate"),
            &[("user_id", &bob.to_string())],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{id}"));
    assert!(
        tors::function(app.pool(), fid)
            .await
            .unwrap()
            .holders
            .is_empty()
    );

    let r = admin
        .post_form(
            &format!("/tors/{id}/functions/{fid}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{id}"));
    assert!(functions_of(&app, id).await.is_empty());

    let r = admin
        .post_form(&format!("/tors/{id}/delete"), &[("confirm", "yes")])
        .await;
    assert_see_other(&r, "/tors");
    assert!(tors::summary(app.pool(), id).await.is_err());
}

#[tokio::test]
async fn admin_edits_a_tor_and_can_deactivate_it() {
    let (app, _) = TestApp::with_demo().await;
    let audit = tor_id(&app, "audit").await;
    let mut admin = client_for(&app, "admin").await;
    let r = admin
        .post_form(
            &format!("/tors/{audit}"),
            &[
                ("title", "Audit & Risk"),
                ("description", "Risk too."),
                ("parent_id", ""),
            ],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{audit}"));
    let after = tors::summary(app.pool(), audit).await.unwrap();
    assert_eq!(after.label, "Audit & Risk");
    assert_eq!(after.description, "Risk too.");
    assert_eq!(after.parent_id, None, "detached from the board");
    assert!(!after.is_active, "an unticked box deactivates");
}

#[tokio::test]
async fn a_position_with_tor_edit_lets_a_viewer_edit_that_tor_and_no_other() {
    let (app, _) = TestApp::with_demo().await;
    let audit = tor_id(&app, "audit").await;
    let finance = tor_id(&app, "finance").await;
    let board = tor_id(&app, "board").await;
    give_position(&app, audit, "steward", &[Capability::EditTor], "dave").await;
    let mut dave = client_for(&app, "dave").await;

    let page = dave.get(&format!("/tors/{audit}")).await;
    assert_html(&page, StatusCode::OK);
    assert!(page.text().contains("Edit this ToR") && !page.text().contains("Delete ToR"));

    let edit = [
        ("title", "Audit and Risk Committee"),
        ("description", "Also risk."),
        ("parent_id", &board.to_string()),
        ("is_active", "on"),
    ];
    let r = dave.post_form(&format!("/tors/{audit}"), &edit).await;
    assert_see_other(&r, &format!("/tors/{audit}"));
    assert_eq!(
        tors::summary(app.pool(), audit).await.unwrap().label,
        "Audit and Risk Committee"
    );
    let r = dave
        .post_form(&format!("/tors/{audit}/functions"), &[("slug", "observer")])
        .await;
    assert_see_other(&r, &format!("/tors/{audit}"));

    let r = dave.post_form(&format!("/tors/{finance}"), &edit).await;
    assert_html(&r, StatusCode::FORBIDDEN);
    assert_eq!(
        tors::summary(app.pool(), finance).await.unwrap().label,
        "Finance Committee"
    );
    let r = dave
        .post_form(
            &format!("/tors/{finance}/functions"),
            &[("slug", "observer")],
        )
        .await;
    assert_html(&r, StatusCode::FORBIDDEN);
    assert_eq!(functions_of(&app, finance).await.len(), 2);

    // tor.edit is not members.manage, and deleting needs tors.manage.
    let steward = function_id(&app, audit, "steward").await;
    let bob = user_id(&app, "bob").await;
    let r = dave
        .post_form(
            &format!("/tors/{audit}/functions/{steward}/assign"),
            &[("user_id", &bob.to_string())],
        )
        .await;
    assert_html(&r, StatusCode::FORBIDDEN);
    let r = dave
        .post_form(&format!("/tors/{audit}/delete"), &[("confirm", "yes")])
        .await;
    assert_html(&r, StatusCode::FORBIDDEN);
    assert!(tors::summary(app.pool(), audit).await.is_ok());
}

#[tokio::test]
async fn a_position_with_members_manage_lets_a_user_fill_and_vacate_positions_of_that_tor() {
    let (app, _) = TestApp::with_demo().await;
    let finance = tor_id(&app, "finance").await;
    let audit = tor_id(&app, "audit").await;
    give_position(&app, finance, "clerk", &[Capability::ManageMembers], "bob").await;
    let treasurer = function_id(&app, finance, "treasurer").await;
    let alice = user_id(&app, "alice").await;
    let mut bob = client_for(&app, "bob").await;

    let r = bob
        .post_form(
            &format!("/tors/{finance}/functions/{treasurer}/assign"),
            &[("user_id", &alice.to_string())],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{finance}"));
    let holders = tors::function(app.pool(), treasurer).await.unwrap().holders;
    assert!(holders.iter().any(|h| h.id == alice));

    let r = bob
        .post_form(
            &format!("/tors/{finance}/functions/{treasurer}/vacate"),
            &[("user_id", &alice.to_string())],
        )
        .await;
    assert_see_other(&r, &format!("/tors/{finance}"));
    let holders = tors::function(app.pool(), treasurer).await.unwrap().holders;
    assert!(!holders.iter().any(|h| h.id == alice));

    let r = bob
        .post_form(
            &format!("/tors/{finance}/functions"),
            &[("slug", "observer")],
        )
        .await;
    assert_html(&r, StatusCode::FORBIDDEN);
    let audit_chair = function_id(&app, audit, "chair").await;
    let r = bob
        .post_form(
            &format!("/tors/{audit}/functions/{audit_chair}/assign"),
            &[("user_id", &alice.to_string())],
        )
        .await;
    assert_html(&r, StatusCode::FORBIDDEN);
    let holders = tors::function(app.pool(), audit_chair)
        .await
        .unwrap()
        .holders;
    assert!(!holders.iter().any(|h| h.id == alice));
}

#[tokio::test]
async fn without_permission_pages_answer_with_a_friendly_403_page() {
    let (app, _) = TestApp::with_demo().await;
    let board = tor_id(&app, "board").await;
    let finance = tor_id(&app, "finance").await;
    let mut bob = client_for(&app, "bob").await;

    let r = bob.get("/tors/new").await;
    assert_html(&r, StatusCode::FORBIDDEN);
    assert!(
        r.text().contains("403") && r.text().contains("tors.manage"),
        "{}",
        r.text()
    );
    let r = bob.post_form("/tors", &[("name", "sneaky")]).await;
    assert_html(&r, StatusCode::FORBIDDEN);
    assert!(
        store::find_entity(app.pool(), kind::TOR, "sneaky")
            .await
            .unwrap()
            .is_none()
    );

    // No roles at all: nothing, except what a position grants on its own ToR.
    new_user(&app, "nobody", &[]).await;
    let mut nobody = client_for(&app, "nobody").await;
    for path in [
        "/tors",
        "/governance",
        "/entities",
        &format!("/tors/{board}"),
    ] {
        assert_html(&nobody.get(path).await, StatusCode::FORBIDDEN);
    }
    give_position(&app, board, "guest", &[Capability::ViewTor], "nobody").await;
    assert_html(&nobody.get(&format!("/tors/{board}")).await, StatusCode::OK);
    assert_html(
        &nobody.get(&format!("/tors/{finance}")).await,
        StatusCode::FORBIDDEN,
    );
}

#[tokio::test]
async fn invalid_input_is_shown_again_with_a_message_and_creates_nothing() {
    let (app, _) = TestApp::with_demo().await;
    let board = tor_id(&app, "board").await;
    let mut admin = client_for(&app, "admin").await;

    let r = admin
        .post_form("/tors", &[("name", "Bad Slug!"), ("title", "Kept title")])
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text().contains("must be lowercase letters"),
        "{}",
        r.text()
    );
    assert!(
        r.text().contains("value=\"Kept title\""),
        "the form keeps its values"
    );
    let r = admin
        .post_form("/tors", &[("name", "board"), ("title", "Board")])
        .await;
    assert_html(&r, StatusCode::CONFLICT);
    assert!(r.text().contains("already exists"));
    let r = admin
        .post_form(
            "/tors",
            &[("name", "orphan"), ("parent_id", "not-a-number")],
        )
        .await;
    assert_html(&r, StatusCode::BAD_REQUEST);
    assert_eq!(tors::list(app.pool()).await.unwrap().len(), 3);

    let r = admin
        .post_form(
            &format!("/tors/{board}/functions"),
            &[("slug", "chair"), ("label", "Second chair")],
        )
        .await;
    assert_html(&r, StatusCode::CONFLICT);
    assert!(r.text().contains("already has a function"), "{}", r.text());
    assert!(r.text().contains("value=\"Second chair\""));
    let r = admin
        .post_form(&format!("/tors/{board}/functions"), &[("slug", "Not OK")])
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin
        .post_form(
            &format!("/tors/{board}/functions"),
            &[("slug", "ok"), ("capabilities", "tor.delete")],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("unknown capability"));
    assert_eq!(functions_of(&app, board).await.len(), 3);

    let chair = function_id(&app, board, "chair").await;
    let r = admin
        .post_form(
            &format!("/tors/{board}/functions/{chair}/assign"),
            &[("user_id", "")],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    let r = admin
        .post_form(
            &format!("/tors/{board}/functions/{chair}/assign"),
            &[("user_id", "987654")],
        )
        .await;
    assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        tors::function(app.pool(), chair)
            .await
            .unwrap()
            .holders
            .len(),
        1
    );
}

#[tokio::test]
async fn a_parent_cycle_is_rejected_and_nothing_of_the_edit_is_saved() {
    let (app, _) = TestApp::with_demo().await;
    let board = tor_id(&app, "board").await;
    let finance = tor_id(&app, "finance").await;
    let mut admin = client_for(&app, "admin").await;
    for parent in [finance, board] {
        let r = admin
            .post_form(
                &format!("/tors/{board}"),
                &[
                    ("title", "Renamed"),
                    ("parent_id", &parent.to_string()),
                    ("is_active", "on"),
                ],
            )
            .await;
        assert_html(&r, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            r.text()
                .contains("cannot report to itself or to one below it"),
            "{}",
            r.text()
        );
        assert!(
            r.text().contains("value=\"Renamed\""),
            "the form keeps its values"
        );
    }
    let after = tors::summary(app.pool(), board).await.unwrap();
    assert_eq!(
        after.label, "Board of Directors",
        "the title change was rolled back"
    );
    assert_eq!(after.parent_id, None);
}

#[tokio::test]
async fn a_function_addressed_through_another_tor_is_not_found() {
    let (app, _) = TestApp::with_demo().await;
    let board = tor_id(&app, "board").await;
    let finance = tor_id(&app, "finance").await;
    let chair = function_id(&app, board, "chair").await;
    let bob = user_id(&app, "bob").await;
    let mut admin = client_for(&app, "admin").await;
    let r = admin
        .post_form(
            &format!("/tors/{finance}/functions/{chair}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_html(&r, StatusCode::NOT_FOUND);
    let r = admin
        .post_form(
            &format!("/tors/{finance}/functions/{chair}/assign"),
            &[("user_id", &bob.to_string())],
        )
        .await;
    assert_html(&r, StatusCode::NOT_FOUND);
    let f = tors::function(app.pool(), chair).await.unwrap();
    assert_eq!(f.holders.len(), 1, "unchanged");
    let r = admin.get("/tors/987654").await;
    assert_html(&r, StatusCode::NOT_FOUND);
    assert!(r.text().contains("There is no ToR 987654."), "{}", r.text());
    assert_html(&admin.get("/tors/abc").await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn tor_titles_are_html_escaped_on_every_page() {
    let (app, _) = TestApp::with_demo().await;
    let mut admin = client_for(&app, "admin").await;
    let r = admin
        .post_form(
            "/tors",
            &[("name", "xss"), ("title", "<script>alert(1)</script>")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let id = tor_id(&app, "xss").await;
    for path in [
        format!("/tors/{id}"),
        "/tors".to_owned(),
        "/governance".to_owned(),
        format!("/entities/{id}"),
    ] {
        let html = admin.get(&path).await.text();
        assert!(!html.contains("<script>alert(1)"), "{path} is not escaped");
        assert!(
            html.contains("&#60;script&#62;alert(1)"),
            "{path} lost the title"
        );
    }
}

#[tokio::test]
async fn cookie_session_form_posts_need_the_csrf_token() {
    let (app, _) = TestApp::with_demo().await;
    let mut browser = app.client();
    let r = browser.get("/api/v1/session").await;
    assert_eq!(r.status, StatusCode::OK);
    let form = "application/x-www-form-urlencoded";
    let r = browser
        .request(
            Method::POST,
            "/tors",
            Some((form, b"name=nocsrf".to_vec())),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = browser
        .request(
            Method::POST,
            "/tors",
            Some((form, b"_csrf=forged&name=nocsrf".to_vec())),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(
        store::find_entity(app.pool(), kind::TOR, "nocsrf")
            .await
            .unwrap()
            .is_none()
    );

    // With the token, the anonymous request gets past CSRF and is sent to log in.
    let r = browser.post_form("/tors", &[("name", "nocsrf")]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(r.location().is_some_and(|l| l.starts_with("/login?next=")));
    let r = browser.get("/governance").await;
    assert_eq!(r.location(), Some("/login?next=%2Fgovernance"));
}

// ---- entity browser ---------------------------------------------------------------------

#[tokio::test]
async fn entity_browser_lists_types_with_counts_and_reports_unknown_types() {
    let (app, _) = TestApp::with_demo().await;
    let mut bob = client_for(&app, "bob").await;
    let r = bob.get("/entities").await;
    assert_html(&r, StatusCode::OK);
    let html = r.text();
    assert!(
        html.contains("<a href=\"/entities?type=tor\">tor</a></td><td>3</td>"),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"/entities?type=tor_function\">tor_function</a></td><td>6</td>")
    );
    // Users need users.view, which a viewer lacks (issue 10): not even listed.
    assert!(!html.contains("?type=user\">user</a>"));

    let r = bob.get("/entities?type=nosuchtype").await;
    assert_html(&r, StatusCode::OK);
    assert!(
        r.text()
            .contains("There are no entities of type nosuchtype.")
    );
    let r = bob.get("/entities?type=tor").await;
    assert!(r.text().contains("Finance Committee") && !r.text().contains("Alice Archer"));
    // A search does not reveal users to a viewer either.
    let r = bob.get("/entities?q=archer").await;
    assert!(!r.text().contains("alice") && !r.text().contains("Finance Committee"));
    let r = bob.get("/entities?q=finance").await;
    assert!(r.text().contains("Finance Committee"));
}

fn next_link(html: &str) -> Option<String> {
    let end = html.find("\" rel=\"next\"")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

#[tokio::test]
async fn entity_browser_paginates_fifty_at_a_time_by_keyset() {
    let (app, _) = TestApp::with_demo().await;
    let mut ids = Vec::new();
    {
        let mut conn = app.pool().acquire().await.unwrap();
        for i in 1..=60 {
            let e = store::create_entity(
                &mut conn,
                &NewEntity::new("widget", &format!("widget-{i:03}")),
            )
            .await
            .unwrap();
            ids.push(e.entity.id);
        }
    }
    let mut bob = client_for(&app, "bob").await;
    let first = bob.get("/entities?type=widget").await;
    assert_html(&first, StatusCode::OK);
    let html = first.text();
    assert_eq!(html.matches(">widget-").count(), 50);
    assert!(html.contains(">widget-001<") && html.contains(">widget-050<"));
    assert!(!html.contains("widget-051"));
    let next = next_link(&html).expect("a next link");
    assert_eq!(next, format!("/entities?type=widget&after={}", ids[49]));

    let second = bob.get(&next).await;
    assert_html(&second, StatusCode::OK);
    let html = second.text();
    assert_eq!(html.matches(">widget-").count(), 10);
    assert!(html.contains(">widget-051<") && html.contains(">widget-060<"));
    assert!(!html.contains("widget-050") && !html.contains("widget-001"));
    assert_eq!(next_link(&html), None, "the last page has no next link");

    let search = bob.get("/entities?type=widget&q=widget-05").await.text();
    assert_eq!(search.matches(">widget-").count(), 10);
    assert!(search.contains(">widget-050<") && !search.contains("widget-049"));
}

#[tokio::test]
async fn entity_page_shows_properties_and_relations_in_both_directions() {
    let (app, _) = TestApp::with_demo().await;
    let board = tor_id(&app, "board").await;
    let chair = function_id(&app, board, "chair").await;
    let alice = user_id(&app, "alice").await;
    let mut bob = client_for(&app, "bob").await;
    let r = bob.get(&format!("/entities/{chair}")).await;
    assert_html(&r, StatusCode::OK);
    let html = r.text();
    let props = section(&html, "<h2>Properties</h2>", "<h2>Relations");
    assert!(
        props.contains("capabilities") && props.contains("&#34;meeting.call&#34;"),
        "{props}"
    );
    assert!(
        props.contains("[\n"),
        "JSON values are pretty-printed: {props}"
    );
    let outgoing = section(
        &html,
        "Relations from this entity",
        "Relations to this entity",
    );
    assert!(outgoing.contains("belongs_to_tor"));
    assert!(
        outgoing.contains(&format!("href=\"/entities/{board}\"")),
        "{outgoing}"
    );
    // Bob (a viewer, no users.view) does not see who fills it (issue 10); an admin does.
    let incoming = section(&html, "Relations to this entity", "</table>");
    assert!(
        !incoming.contains(&format!("href=\"/entities/{alice}\"")),
        "{incoming}"
    );
    let mut admin = app.client();
    admin.login("admin", ADMIN_PASSWORD).await;
    let html = admin.get(&format!("/entities/{chair}")).await.text();
    let incoming = section(&html, "Relations to this entity", "</table>");
    assert!(incoming.contains("fills_position"));
    assert!(
        incoming.contains(&format!("href=\"/entities/{alice}\"")),
        "{incoming}"
    );
}

#[tokio::test]
async fn the_admin_users_entity_page_shows_no_password_hash() {
    let (app, _) = TestApp::with_demo().await;
    let admin_id = user_id(&app, "admin").await;
    let stored = users::password_hash(app.pool(), admin_id)
        .await
        .unwrap()
        .unwrap();
    assert!(stored.starts_with("$argon2"), "the hash exists, elsewhere");
    let mut admin = client_for(&app, "admin").await;
    let r = admin.get(&format!("/entities/{admin_id}")).await;
    assert_html(&r, StatusCode::OK);
    assert!(r.text().contains("Administrator"));
    assert!(!r.text().contains("$argon2"));
    assert!(!r.text().contains(&stored));
}

#[tokio::test]
async fn entity_browser_rejects_hostile_or_malformed_input_with_a_400_page() {
    let (app, _) = TestApp::with_demo().await;
    let mut bob = client_for(&app, "bob").await;
    for path in [
        "/entities?type=x%27%3BDROP%20TABLE%20entities%3B--",
        "/entities?type=User",
        "/entities?type=tor&after=abc",
        "/entities/abc",
    ] {
        assert_html(&bob.get(path).await, StatusCode::BAD_REQUEST);
    }
    assert_html(&bob.get("/entities/987654").await, StatusCode::NOT_FOUND);
    let tors: BTreeSet<String> = tors::list(app.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(tors.len(), 3, "the tables are intact");
}

// ---- error pages ------------------------------------------------------------------------

#[tokio::test]
async fn unknown_pages_are_html_404s_and_unknown_api_paths_json_404s() {
    let app = TestApp::new().await;
    let mut anon = app.client();
    let r = anon.get("/no/such/page").await;
    assert_html(&r, StatusCode::NOT_FOUND);
    assert!(r.text().contains("404"));
    let r = anon.get("/api/v1/no-such-endpoint").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.error_code(), "not_found");
}
