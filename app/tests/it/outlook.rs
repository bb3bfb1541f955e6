//! Meeting cadences and the outlook, in the environment's time zone (Europe/Oslo here):
//! wall-clock times across daylight-saving changes, month ends, the window's limits,
//! visibility, the cadence API and the pages.

use crate::api_support;

use ahlt::config::AppConfig;
use ahlt::domain::Capability;
use ahlt::test_app::{TestApp, TestClient};
use api_support::*;
use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

async fn oslo() -> TestApp {
    TestApp::with_config(AppConfig {
        timezone: jiff::tz::TimeZone::get("Europe/Oslo").unwrap(),
        ..AppConfig::for_tests()
    })
    .await
}

async fn create_tor(client: &mut TestClient, name: &str) -> i64 {
    let r = client
        .post_json("/api/v1/tors", &json!({"name": name, "label": name}))
        .await;
    assert_status(&r, 201)["id"].as_i64().unwrap()
}

async fn set_cadence(client: &mut TestClient, tor: i64, cadence: Value) -> Value {
    let r = client
        .send_json(
            Method::PUT,
            &format!("/api/v1/tors/{tor}/cadence"),
            &cadence,
        )
        .await;
    assert_status(&r, 200)
}

async fn outlook(client: &mut TestClient, query: &str) -> Value {
    assert_status(
        &client.get(&format!("/api/v1/tors/outlook?{query}")).await,
        200,
    )
}

fn starts(outlook: &Value, tor: &str) -> Vec<String> {
    outlook["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["tor_name"] == tor)
        .map(|m| m["start"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn meetings_keep_their_wall_clock_time_across_daylight_saving_changes() {
    let app = oslo().await;
    let (_, mut admin) = admin(&app).await;
    let weekly = create_tor(&mut admin, "weekly").await;
    let night = create_tor(&mut admin, "night").await;
    let info = set_cadence(
        &mut admin,
        weekly,
        json!({"meeting_cadence": "weekly", "cadence_day": "monday", "cadence_time": "09:00",
               "cadence_duration_minutes": 90, "default_location": "Room 1"}),
    )
    .await;
    assert_eq!(
        info["cadence"]["summary"],
        "Every Monday at 09:00 for 90 minutes, Room 1"
    );
    set_cadence(
        &mut admin,
        night,
        json!({"meeting_cadence": "daily", "cadence_time": "02:30", "cadence_duration_minutes": 60}),
    )
    .await;

    // Spring forward on Sunday 2026-03-29 (02:00 → 03:00).
    let spring = outlook(&mut admin, "from=2026-03-16&days=21").await;
    assert_eq!(spring["timezone"], "Europe/Oslo");
    assert_eq!(spring["from"], "2026-03-16");
    assert_eq!(spring["to"], "2026-04-05");
    assert_eq!(
        starts(&spring, "weekly"),
        [
            "2026-03-16T09:00:00+01:00",
            "2026-03-23T09:00:00+01:00",
            "2026-03-30T09:00:00+02:00"
        ]
    );
    let first = spring["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tor_name"] == "weekly")
        .unwrap();
    assert_eq!(first["end"], "2026-03-16T10:30:00+01:00");
    assert_eq!(first["start_time"], "09:00");
    assert_eq!(first["location"], "Room 1");
    // 02:30 does not exist that night: the meeting moves forward by the gap.
    let night_starts = starts(&spring, "night");
    assert_eq!(night_starts.len(), 21);
    assert!(night_starts.contains(&"2026-03-28T02:30:00+01:00".to_owned()));
    assert!(night_starts.contains(&"2026-03-29T03:30:00+02:00".to_owned()));
    assert!(night_starts.contains(&"2026-03-30T02:30:00+02:00".to_owned()));

    // Fall back on Sunday 2026-10-25 (03:00 → 02:00): 02:30 happens twice, the first counts,
    // and the hour-long meeting ends an absolute hour later.
    let autumn = outlook(&mut admin, "from=2026-10-24&days=3").await;
    let meetings: Vec<(&str, &str)> = autumn["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["tor_name"] == "night")
        .map(|m| (m["start"].as_str().unwrap(), m["end"].as_str().unwrap()))
        .collect();
    assert_eq!(
        meetings,
        [
            ("2026-10-24T02:30:00+02:00", "2026-10-24T03:30:00+02:00"),
            ("2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"),
            ("2026-10-26T02:30:00+01:00", "2026-10-26T03:30:00+01:00"),
        ]
    );
    // Sorted by start time across ToRs.
    let all: Vec<&str> = spring["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["start"].as_str().unwrap())
        .collect();
    let mut sorted = all.clone();
    sorted.sort_by_key(|s| s.parse::<jiff::Timestamp>().unwrap());
    assert_eq!(all, sorted);
}

#[tokio::test]
async fn monthly_cadences_cross_month_ends() {
    let app = oslo().await;
    let (_, mut admin) = admin(&app).await;
    let last_day = create_tor(&mut admin, "lastday").await;
    let last_friday = create_tor(&mut admin, "lastfriday").await;
    set_cadence(
        &mut admin,
        last_day,
        json!({"meeting_cadence": "monthly", "cadence_day": "31", "cadence_time": "16:00"}),
    )
    .await;
    set_cadence(
        &mut admin,
        last_friday,
        json!({"meeting_cadence": "monthly", "cadence_day": "friday", "cadence_week": "last"}),
    )
    .await;
    let window = outlook(&mut admin, "from=2026-01-25&days=90").await;
    assert_eq!(
        starts(&window, "lastday"),
        [
            "2026-01-31T16:00:00+01:00",
            "2026-02-28T16:00:00+01:00",
            "2026-03-31T16:00:00+02:00"
        ]
    );
    assert_eq!(
        starts(&window, "lastfriday"),
        [
            "2026-01-30T09:00:00+01:00",
            "2026-02-27T09:00:00+01:00",
            "2026-03-27T09:00:00+01:00",
            "2026-04-24T09:00:00+02:00"
        ]
    );
    assert_eq!(window["to"], "2026-04-24");
}

#[tokio::test]
async fn the_window_defaults_to_30_days_and_is_at_most_90() {
    let app = oslo().await;
    let (_, mut admin) = admin(&app).await;
    let default = outlook(&mut admin, "").await;
    assert_eq!(default["days"], 30);
    assert_eq!(outlook(&mut admin, "days=90").await["days"], 90);
    for bad in [
        "days=0",
        "days=91",
        "days=-1",
        "from=2026-13-01",
        "from=soon",
        "weeks=2",
    ] {
        assert_error(
            &admin.get(&format!("/api/v1/tors/outlook?{bad}")).await,
            400,
            "bad_request",
        );
    }
    // Invalid cadences are 422s naming the problem; nothing is stored.
    let tor = create_tor(&mut admin, "t").await;
    for bad in [
        json!({"meeting_cadence": "weekly"}),
        json!({"meeting_cadence": "monthly", "cadence_day": "32"}),
        json!({"meeting_cadence": "weekly", "cadence_day": "monday", "cadence_time": "25:00"}),
        json!({"meeting_cadence": "weekly", "cadence_day": "monday", "cadence_duration_minutes": 0}),
        json!({"meeting_cadence": "hourly"}),
    ] {
        let r = admin
            .send_json(Method::PUT, &format!("/api/v1/tors/{tor}/cadence"), &bad)
            .await;
        assert_error(&r, 422, "validation_failed");
    }
    let r = assert_status(
        &admin.get(&format!("/api/v1/tors/{tor}/cadence")).await,
        200,
    );
    assert_eq!(r["cadence"], Value::Null);
}

#[tokio::test]
async fn readers_see_the_meetings_of_the_tors_they_may_view() {
    let app = oslo().await;
    let (_, mut admin) = admin(&app).await;
    let mine = create_tor(&mut admin, "mine").await;
    let other = create_tor(&mut admin, "other").await;
    let asleep = create_tor(&mut admin, "asleep").await;
    for tor in [mine, other, asleep] {
        set_cadence(
            &mut admin,
            tor,
            json!({"meeting_cadence": "weekly", "cadence_day": "tuesday"}),
        )
        .await;
    }
    assert_status(
        &admin
            .send_json(
                Method::PATCH,
                &format!("/api/v1/tors/{asleep}"),
                &json!({"is_active": false}),
            )
            .await,
        200,
    );
    // A user without roles who fills a position with tor.view on `mine` only.
    let (member, mut client) = user(&app, "mia", &[]).await;
    let r = admin
        .post_json(
            &format!("/api/v1/tors/{mine}/functions"),
            &json!({"slug": "member", "capabilities": [Capability::ViewTor.as_str()]}),
        )
        .await;
    let function = assert_status(&r, 201)["id"].as_i64().unwrap();
    assert_status(
        &admin
            .send_json(
                Method::PUT,
                &format!("/api/v1/tors/{mine}/functions/{function}/holders/{member}"),
                &json!({}),
            )
            .await,
        200,
    );
    let seen = outlook(&mut client, "from=2026-06-01&days=14").await;
    let tors: std::collections::BTreeSet<&str> = seen["meetings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["tor_name"].as_str().unwrap())
        .collect();
    assert_eq!(tors.into_iter().collect::<Vec<_>>(), ["mine"]);
    let all = outlook(&mut admin, "from=2026-06-01&days=14").await;
    assert_eq!(starts(&all, "other").len(), 2);
    assert!(
        starts(&all, "asleep").is_empty(),
        "inactive ToRs do not meet"
    );
    // Only editors change a cadence.
    let r = client
        .send_json(
            Method::DELETE,
            &format!("/api/v1/tors/{mine}/cadence"),
            &json!({}),
        )
        .await;
    assert_error(&r, 403, "forbidden");
}

#[tokio::test]
async fn the_outlook_page_and_the_tor_pages_cadence_form() {
    let app = oslo().await;
    let (_, mut admin) = admin(&app).await;
    let tor = create_tor(&mut admin, "budget").await;
    let r = admin
        .post_form(
            &format!("/tors/{tor}/cadence"),
            &[
                ("meeting_cadence", "biweekly"),
                ("cadence_day", "Thursday"),
                ("cadence_time", "10:15"),
                ("cadence_duration_minutes", "45"),
                ("default_location", "Room <B>"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let page = admin.get(&format!("/tors/{tor}")).await.text();
    assert!(
        page.contains("Every other Thursday at 10:15 for 45 minutes, Room &#60;B&#62;"),
        "{page}"
    );
    let r = admin
        .post_form(
            &format!("/tors/{tor}/cadence"),
            &[("meeting_cadence", "weekly"), ("cadence_day", "someday")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("someday"), "typed value shown again");

    let r = admin.get("/tors/outlook?from=2026-01-01&days=28").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("Europe/Oslo"), "{html}");
    // Biweekly Thursdays in the even weeks from Monday 2026-01-05: 8 and 22 January.
    assert!(
        html.contains("2026-01-08") && html.contains("2026-01-22"),
        "{html}"
    );
    assert!(!html.contains("2026-01-15"), "{html}");
    assert!(html.contains("10:15"));
    let r = admin.get("/tors/outlook?days=120").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}
