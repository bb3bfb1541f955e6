//! The whole meeting pipeline in headless Chromium, through the pages only: suggest → accept →
//! propose → approve → plan a meeting → schedule → meet (roll call, decision) → minutes →
//! approve the minutes → print. Each page fits 360 px. Skipped (with the reason printed)
//! where Chromium or chromedriver is absent.

use ahlt::domain::audit::Actor;
use ahlt::domain::tors::{self, NewFunction, NewTor};
use ahlt::domain::users;
use ahlt::test_app::{ADMIN_PASSWORD, TestApp};
use ahlt::testing::browser::Browser;

/// A board whose chair is the administrator (so the roll call lists them).
async fn board(app: &TestApp) -> i64 {
    let actor = Actor::system();
    let admin = users::find_by_username(app.pool(), "admin")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut tx = app.pool().begin().await.unwrap();
    let new = NewTor {
        name: "board".into(),
        label: "Board".into(),
        description: String::new(),
        parent_id: None,
    };
    let tor = tors::create(&mut tx, &actor, &new).await.unwrap().id;
    let chair = NewFunction {
        slug: "chair".into(),
        label: "Chair".into(),
        description: String::new(),
        capabilities: ["meeting.call", "agenda.set", "minutes.record"]
            .iter()
            .map(|c| c.parse().unwrap())
            .collect(),
    };
    let f = tors::add_function(&mut tx, &actor, tor, &chair)
        .await
        .unwrap();
    tors::assign(&mut tx, &actor, f.id, admin).await.unwrap();
    tx.commit().await.unwrap();
    tor
}

async fn assert_fits(browser: &Browser, what: &str) {
    let overflow = browser.overflow().await;
    assert!(
        overflow.fits(),
        "{what} at 360 px: {overflow:?} {:?}",
        browser.overflowing_elements().await
    );
}

async fn flash(browser: &Browser) -> String {
    browser
        .script("const f = document.querySelector('.flash'); return f ? f.innerText : '';")
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_suggestion_becomes_a_decision_with_approved_minutes_in_the_browser() {
    let app = TestApp::new().await;
    let tor = board(&app).await;
    let server = app.serve().await;
    let Some(browser) = Browser::start(360, 740).await else {
        return;
    };
    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;

    // From the ToR page to its pipeline; suggest.
    browser.goto(&server.url(&format!("/tors/{tor}"))).await;
    browser.follow("#pipeline-link").await;
    assert_eq!(browser.path().await, format!("/tors/{tor}/pipeline"));
    browser
        .fill_and_submit(
            "#new-suggestion",
            &[
                ("title", "Buy a new projector"),
                ("description", "It flickers"),
            ],
        )
        .await;
    assert!(flash(&browser).await.contains("suggestion was added"));
    assert_fits(&browser, "the pipeline").await;

    // Accept: a draft proposal appears; submit, review, approve it.
    browser
        .follow("#suggestions button[data-move=\"accepted\"]")
        .await;
    for to in ["submitted", "under_review", "approved"] {
        browser
            .follow(&format!("#proposals button[data-move=\"{to}\"]"))
            .await;
    }
    let queue = browser
        .script("return document.querySelector('#queue').innerText;")
        .await;
    assert!(
        queue.as_str().unwrap().contains("Buy a new projector"),
        "{queue}"
    );

    // Plan a meeting (values set directly: date inputs type by locale).
    browser
        .script(
            "const f = document.querySelector('#new-meeting'); \
             f.querySelector('[name=date]').value = '2031-04-01'; \
             f.querySelector('[name=time]').value = '10:00'; return null;",
        )
        .await;
    browser.submit("#new-meeting").await;
    let meeting_path = browser.path().await;
    assert!(meeting_path.starts_with("/meetings/"), "{meeting_path}");

    // Schedule from the queue, confirm, start, roll call.
    browser.submit("#schedule").await;
    assert!(browser.body_text().await.contains("Buy a new projector"));
    browser
        .follow("form.move button[data-move=\"confirmed\"]")
        .await;
    browser
        .follow("form.move button[data-move=\"in_progress\"]")
        .await;
    browser.follow("#roll-call button[value=\"present\"]").await;
    let attendance = browser
        .script("return document.querySelector('#roll-call .attendance').innerText;")
        .await;
    assert_eq!(attendance, "present");
    assert_fits(&browser, "the meeting").await;

    // Weigh a course of action and give an opinion preferring it.
    browser
        .fill_and_submit(
            ".coa-form",
            &[
                ("title", "Buy the brighter model"),
                ("section_title", "Cost"),
                ("section_body", "900 once"),
            ],
        )
        .await;
    let coa = browser
        .script("return document.querySelector('#agenda .coa').dataset.coa;")
        .await;
    let coa = coa.as_str().unwrap().to_owned();
    browser
        .fill_and_submit(
            ".opinion-form",
            &[("preferred_coa_id", coa.as_str()), ("text", "Worth it")],
        )
        .await;
    let agenda = browser
        .script("return document.querySelector('#agenda').innerText;")
        .await;
    let agenda = agenda.as_str().unwrap();
    assert!(agenda.contains("preferred by 1"), "{agenda}");
    assert!(
        agenda.contains("Administrator prefers Buy the brighter model: Worth it"),
        "{agenda}"
    );

    // Decide the point (its text is required), complete the meeting.
    browser
        .fill("#agenda form.move", &[("outcome", "Buy it within budget")])
        .await;
    browser
        .follow("#agenda button[data-move=\"decided\"]")
        .await;
    assert!(
        browser
            .body_text()
            .await
            .contains("Decision: Buy it within budget")
    );
    browser
        .follow("form.move button[data-move=\"completed\"]")
        .await;
    assert_eq!(
        browser
            .script("return document.querySelector('#meeting-status').innerText;")
            .await,
        "completed"
    );

    // Minutes drafted from the meeting, a section edited, then approved.
    browser.submit("#generate-minutes").await;
    let minutes_path = browser.path().await;
    assert!(minutes_path.starts_with("/minutes/"), "{minutes_path}");
    let scaffold = browser.source().await;
    assert!(scaffold.contains("Present: Administrator"), "attendance");
    assert!(
        scaffold.contains("Buy a new projector: Buy it within budget"),
        "decisions"
    );
    assert_fits(&browser, "the minutes").await;
    browser
        .fill_and_submit(
            "[data-section=\"notes\"] form",
            &[("body", "Short and sweet.")],
        )
        .await;
    assert!(flash(&browser).await.contains("Saved Notes"));
    browser
        .follow("form.move button[data-move=\"approved\"]")
        .await;
    assert_eq!(
        browser
            .script("return document.querySelector('#minutes-status').innerText;")
            .await,
        "approved"
    );
    // Approved minutes are read, not edited.
    assert!(!browser.exists(".minutes-section textarea").await);

    // The printable version: the document, its print stylesheet, no navigation.
    browser.follow("#print-link").await;
    let printable = browser.source().await;
    assert!(printable.contains("/static/print.css"));
    assert!(printable.contains("Short and sweet."));
    assert!(printable.contains("Buy it within budget"));
    assert!(!browser.exists("nav").await);
    assert_fits(&browser, "the printable minutes").await;

    // The workflow admin page and the dashboard (with the pipeline's sections) fit too.
    browser.goto(&server.url("/workflow")).await;
    assert!(browser.exists("select[name=\"required_capability\"]").await);
    assert_fits(&browser, "the workflow page").await;
    browser.goto(&server.url("/")).await;
    assert!(browser.exists("#next-meetings").await);
    assert_fits(&browser, "the dashboard").await;

    let status: String = sqlx::query_scalar(
        "SELECT p.value #>> '{}' FROM entities e JOIN entity_properties p ON p.entity_id = e.id AND p.key = 'status' \
         WHERE e.entity_type = 'minutes'",
    )
    .fetch_one(server.app.pool())
    .await
    .unwrap();
    assert_eq!(status, "approved");
    browser.close().await;
}
