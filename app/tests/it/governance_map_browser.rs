//! The interactive governance map in headless Chromium: a dozen ToRs with dependencies of
//! both types, the SVG holds a node per ToR and an edge per dependency, edge types differ by
//! line style (not only colour), a node shows its details, zoom works, and the page (with the
//! other new pages) fits 360 px. Skipped (with the reason printed) where Chromium or chromedriver is absent.

use std::collections::BTreeSet;

use ahlt::domain::audit::Actor;
use ahlt::domain::cadence::{Cadence, CadenceFields};
use ahlt::domain::dependencies::{self, DependencyKind, NewDependency};
use ahlt::domain::outlook;
use ahlt::domain::tors::{self, NewTor};
use ahlt::test_app::{ADMIN_PASSWORD, TestApp};
use ahlt::testing::browser::Browser;
use fantoccini::Locator;

const TORS: usize = 12;

/// (source, kind, target, blocking) by index into the ToRs; a feeds_into loop included.
const DEPENDENCIES: [(usize, DependencyKind, usize, bool); 14] = [
    (0, DependencyKind::FeedsInto, 1, true),
    (1, DependencyKind::FeedsInto, 2, false),
    (2, DependencyKind::FeedsInto, 0, false),
    (1, DependencyKind::EscalatesTo, 3, false),
    (3, DependencyKind::EscalatesTo, 4, true),
    (4, DependencyKind::FeedsInto, 5, false),
    (5, DependencyKind::FeedsInto, 6, false),
    (6, DependencyKind::FeedsInto, 7, true),
    (7, DependencyKind::EscalatesTo, 8, false),
    (8, DependencyKind::FeedsInto, 9, false),
    (9, DependencyKind::FeedsInto, 10, false),
    (10, DependencyKind::EscalatesTo, 11, false),
    (0, DependencyKind::FeedsInto, 11, false),
    (5, DependencyKind::EscalatesTo, 11, false),
];

/// Twelve ToRs (the last three report to the first), the dependencies above and a few
/// cadences; returns the ToR ids.
async fn governance(app: &TestApp) -> Vec<i64> {
    let actor = Actor::system();
    let mut tx = app.pool().begin().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..TORS {
        let new = NewTor {
            name: format!("tor-{i:02}"),
            label: format!("Committee {i:02}"),
            description: format!("Does the work of step {i}"),
            parent_id: (i >= 9).then(|| ids[0]),
        };
        ids.push(tors::create(&mut tx, &actor, &new).await.unwrap().id);
    }
    for (source, kind, target, is_blocking) in DEPENDENCIES {
        let new = NewDependency {
            kind,
            source_id: ids[source],
            target_id: ids[target],
            output_types: format!("outputs of {source}"),
            description: String::new(),
            is_blocking,
        };
        dependencies::create(&mut tx, &actor, &new).await.unwrap();
    }
    for &id in ids.iter().step_by(3) {
        let cadence = Cadence::from_fields(&CadenceFields {
            meeting_cadence: "weekly".into(),
            cadence_day: "tuesday".into(),
            cadence_time: "10:00".into(),
            ..Default::default()
        })
        .unwrap();
        outlook::set_cadence(&mut tx, &actor, id, cadence.as_ref())
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    ids
}

/// Loads the map page and waits until the script has drawn the graph.
async fn open_map(browser: &Browser, url: &str) {
    browser.goto(url).await;
    browser
        .client()
        .wait()
        .for_element(Locator::Css("#governance-graph[data-ready]"))
        .await
        .expect("the map script finished");
    let ready = browser
        .script("return document.getElementById('governance-graph').dataset.ready;")
        .await;
    assert_eq!(ready, "true", "the map loaded its data");
}

fn numbers(value: &serde_json::Value) -> Vec<i64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_map_draws_a_node_per_tor_and_an_edge_per_dependency() {
    let app = TestApp::new().await;
    let ids = governance(&app).await;
    let server = app.serve().await;
    let Some(browser) = Browser::start(1280, 900).await else {
        return;
    };
    browser
        .login(&server.base_url, "admin", ADMIN_PASSWORD)
        .await;
    open_map(&browser, &server.url("/governance")).await;

    let nodes = browser
        .script(
            "return [...document.querySelectorAll('#governance-graph svg.map-canvas .map-node')]\
               .map(n => n.getAttribute('data-tor-id'));",
        )
        .await;
    let drawn: BTreeSet<i64> = numbers(&nodes).into_iter().collect();
    assert_eq!(drawn, ids.iter().copied().collect::<BTreeSet<_>>());
    assert_eq!(numbers(&nodes).len(), TORS);

    let count = |css: &'static str| {
        let browser = &browser;
        async move {
            browser
                .script(&format!(
                    "return document.querySelectorAll('#governance-graph svg.map-canvas {css}').length;"
                ))
                .await
                .as_u64()
                .unwrap() as usize
        }
    };
    assert_eq!(count(".map-dependency").await, DEPENDENCIES.len());
    let escalations = DEPENDENCIES
        .iter()
        .filter(|d| d.1 == DependencyKind::EscalatesTo)
        .count();
    assert_eq!(count(".edge-escalates_to").await, escalations);
    assert_eq!(
        count(".edge-feeds_into").await,
        DEPENDENCIES.len() - escalations
    );
    let blocking = DEPENDENCIES.iter().filter(|d| d.3).count();
    assert_eq!(count(".edge-blocking").await, blocking);
    assert_eq!(
        count(".edge-label").await,
        blocking,
        "blocking edges are labelled"
    );
    assert_eq!(count(".map-hierarchy").await, 3, "reports_to links");

    // Told apart without colour: dash pattern and stroke width.
    let styles = browser
        .script(
            "const s = c => { const e = document.querySelector('#governance-graph svg.map-canvas ' + c);\
               const st = getComputedStyle(e); return [st.strokeDasharray, st.strokeWidth]; };\
             return [s('.edge-feeds_into:not(.edge-blocking)'), s('.edge-escalates_to:not(.edge-blocking)'),\
                     s('.edge-blocking')];",
        )
        .await;
    assert_ne!(styles[0][0], styles[1][0], "dashes differ: {styles}");
    assert_ne!(styles[0][1], styles[2][1], "blocking is thicker: {styles}");

    // Every node sits inside the drawing and no two overlap.
    let overlaps = browser
        .script(
            "const r = [...document.querySelectorAll('#governance-graph .map-node rect')]\
               .map(e => e.getBoundingClientRect());\
             let n = 0; for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) {\
               const a = r[i], b = r[j];\
               if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++; }\
             return n;",
        )
        .await;
    assert_eq!(overlaps, 0);

    // Details of a ToR: click it.
    let first = ids[0];
    browser
        .find(&format!(
            "#governance-graph .map-node[data-tor-id=\"{first}\"]"
        ))
        .await
        .click()
        .await
        .unwrap();
    let details = browser
        .script("const d = document.getElementById('map-details'); return [d.hidden, d.innerText];")
        .await;
    assert_eq!(details[0], false);
    let text = details[1].as_str().unwrap();
    assert!(text.contains("Committee 00"), "{text}");
    assert!(text.contains("Every Tuesday at 10:00"), "{text}");
    assert!(text.contains("Your capabilities"), "{text}");
    assert!(
        text.contains("feeds into Committee 01 (blocking)"),
        "{text}"
    );
    assert!(text.contains("receives from Committee 02"), "{text}");

    // Zoom in changes the viewport's scale.
    let transform = "return document.querySelector('#governance-graph .map-viewport').getAttribute('transform');";
    let before = browser.script(transform).await;
    browser
        .find("#governance-graph [data-zoom=\"in\"]")
        .await
        .click()
        .await
        .unwrap();
    let after = browser.script(transform).await;
    assert_ne!(before, after);
    assert!(after.as_str().unwrap().contains("scale(1.2)"), "{after}");

    // The page fits a 360 px screen.
    browser.resize(360, 740).await;
    open_map(&browser, &server.url("/governance")).await;
    let overflow = browser.overflow().await;
    assert!(
        overflow.fits(),
        "{overflow:?}: {:?}",
        browser.overflowing_elements().await
    );
    // So do the other new pages: a ToR with its dependency and cadence forms, the outlook
    // and the data page.
    for path in [
        format!("/tors/{first}"),
        "/tors/outlook?from=2026-03-01&days=90".to_owned(),
        "/admin/data".to_owned(),
    ] {
        browser.goto(&server.url(&path)).await;
        let overflow = browser.overflow().await;
        assert!(
            overflow.fits(),
            "{path}: {overflow:?}: {:?}",
            browser.overflowing_elements().await
        );
    }
    browser.close().await;
}
