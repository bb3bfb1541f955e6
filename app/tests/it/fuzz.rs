//! Issue 14: a bounded, seeded fuzz test. It walks every route of `docs/api.md` and every HTML
//! form the pages offer an administrator, mutates one field at a time (path parameter, query
//! parameter, body field, property value, form field) with hostile values, and asserts that
//! nothing answers 5xx. In process (no network), deterministic (seed [`SEED`]), bounded
//! ([`VALUES_PER_FIELD`] values per field).

use crate::api_support;

use std::collections::{BTreeMap, BTreeSet};

use ahlt::test_app::{ADMIN_PASSWORD, TestApp, TestClient};
use api_support::{admin, assert_status};
use axum::http::Method;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const SEED: u64 = 14;
const VALUES_PER_FIELD: usize = 4;

fn hostile_strings() -> Vec<String> {
    vec![
        "\0".into(),
        "a\0b".into(),
        String::new(),
        " ".into(),
        "-1".into(),
        "0".into(),
        "01".into(),
        "+1".into(),
        " 1".into(),
        "99999999999999999999999".into(),
        "x".repeat(10_000),
        "<script>alert(1)</script>".into(),
        "'; DROP TABLE entities; --".into(),
        "\u{FFFF}\u{1F600}".into(),
        "../../etc/passwd".into(),
        "%00".into(),
        "\u{7}\u{1b}[31m".into(),
        "null".into(),
    ]
}

fn hostile_json(rng: &mut StdRng) -> Value {
    let mut values: Vec<Value> = hostile_strings().into_iter().map(Value::String).collect();
    values.extend([
        Value::Null,
        json!(true),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(i64::MAX),
        json!(u64::MAX),
        json!([]),
        json!({}),
        json!({"a": "\u{0}"}),
        json!(["\u{0}"]),
    ]);
    values.choose(rng).unwrap().clone()
}

/// `(method, path template, query parameter names)` of every route in docs/api.md.
fn documented_routes() -> Vec<(Method, String, Vec<String>)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md"))
        .expect("docs/api.md");
    let mut routes = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 3 {
            continue;
        }
        let Ok(method) = cells[1].parse::<Method>() else {
            continue;
        };
        if !["GET", "POST", "PATCH", "PUT", "DELETE"].contains(&method.as_str()) {
            continue;
        }
        let raw = cells[2].trim_matches('`');
        let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
        let params = query
            .split('&')
            .filter_map(|p| p.split('=').next())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        routes.push((method, format!("/api/v1{path}"), params));
    }
    assert!(
        routes.len() >= 30,
        "docs/api.md lists {} routes",
        routes.len()
    );
    routes
}

/// Ids to fill path templates with.
struct Fixture {
    ids: BTreeMap<&'static str, i64>,
}

async fn fixture(app: &TestApp, api: &mut TestClient) -> Fixture {
    let post = |body: Value| body;
    let mut ids = BTreeMap::new();
    let probe = |v: &Value| v["id"].as_i64().unwrap();
    assert_status(
        &api.post_json(
            "/api/v1/entities",
            &post(json!({"entity_type": "relation_type", "name": "depends_on"})),
        )
        .await,
        201,
    );
    let a = probe(&assert_status(
        &api.post_json(
            "/api/v1/entities",
            &json!({"entity_type": "probe", "name": "pa"}),
        )
        .await,
        201,
    ));
    let b = probe(&assert_status(
        &api.post_json(
            "/api/v1/entities",
            &json!({"entity_type": "probe", "name": "pb"}),
        )
        .await,
        201,
    ));
    let relation = probe(&assert_status(
        &api.post_json(
            "/api/v1/relations",
            &json!({"relation_type": "depends_on", "source_id": a, "target_id": b}),
        )
        .await,
        201,
    ));
    let tor = probe(&assert_status(
        &api.post_json("/api/v1/tors", &json!({"name": "board", "label": "Board"}))
            .await,
        201,
    ));
    let function = probe(&assert_status(
        &api.post_json(
            &format!("/api/v1/tors/{tor}/functions"),
            &json!({"slug": "chair", "capabilities": ["tor.view"]}),
        )
        .await,
        201,
    ));
    let user = api_support::create_user(app, "fuzzed", &["viewer"]).await;
    let token = probe(&assert_status(
        &api.post_json("/api/v1/tokens", &json!({"name": "fuzz"}))
            .await,
        201,
    ));
    // The meeting pipeline: a suggestion, a meeting in progress with minutes, a section,
    // an action item and a workflow transition.
    let item = probe(&assert_status(
        &api.post_json(
            &format!("/api/v1/tors/{tor}/suggestions"),
            &json!({"title": "fz"}),
        )
        .await,
        201,
    ));
    let meeting = probe(&assert_status(
        &api.post_json(
            &format!("/api/v1/tors/{tor}/meetings"),
            &json!({"date": "2031-01-01"}),
        )
        .await,
        201,
    ));
    for to in ["confirmed", "in_progress"] {
        assert_status(
            &api.post_json(
                &format!("/api/v1/items/{meeting}/transitions"),
                &json!({"to": to}),
            )
            .await,
            200,
        );
    }
    let minutes = assert_status(
        &api.post_json(&format!("/api/v1/meetings/{meeting}/minutes"), &json!({}))
            .await,
        201,
    );
    let section = minutes["sections"][0]["id"].as_i64().unwrap();
    let minutes = probe(&minutes);
    let action = probe(&assert_status(
        &api.post_json(
            &format!("/api/v1/minutes/{minutes}/action-items"),
            &json!({"description": "fz", "owner_id": user}),
        )
        .await,
        201,
    ));
    let transition = assert_status(&api.get("/api/v1/workflow").await, 200)["transitions"][0]["id"]
        .as_i64()
        .unwrap();
    // A course of action with a section, on an agenda point of the meeting.
    let point = probe(&assert_status(
        &api.post_json(
            &format!("/api/v1/meetings/{meeting}/agenda"),
            &json!({"title": "fz point"}),
        )
        .await,
        201,
    ));
    let coa = assert_status(
        &api.post_json(
            &format!("/api/v1/items/{point}/coas"),
            &json!({"title": "fz", "sections": [{"title": "Cost", "body": "b"}]}),
        )
        .await,
        201,
    );
    let coa = probe(&coa);
    let coa_section: i64 = sqlx::query_scalar(
        "SELECT id FROM entities WHERE entity_type = 'coa_section' ORDER BY id LIMIT 1",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    ids.insert("coa", coa);
    ids.insert("coa_section", coa_section);
    ids.insert("item", item);
    ids.insert("meeting", meeting);
    ids.insert("minutes", minutes);
    ids.insert("section", section);
    ids.insert("action", action);
    ids.insert("transition", transition);
    ids.insert("entity", a);
    ids.insert("entity2", b);
    ids.insert("relation", relation);
    ids.insert("tor", tor);
    ids.insert("function", function);
    ids.insert("user", user);
    ids.insert("token", token);
    Fixture { ids }
}

impl Fixture {
    /// The id for the `n`-th `{...}` of `template`.
    fn path_values(&self, template: &str) -> Vec<String> {
        let resource = template
            .trim_start_matches("/api/v1/")
            .split('/')
            .next()
            .unwrap_or("");
        let mut values = Vec::new();
        for (i, segment) in template.split('/').enumerate() {
            let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
                continue;
            };
            let key = match (resource, name) {
                (_, "fid") => "function",
                (_, "user_id") => "user",
                ("entities", _) => "entity",
                ("relations", _) => "relation",
                ("users", _) => "user",
                ("tors", _) => "tor",
                ("tokens", _) => "token",
                ("items", _) => "item",
                ("meetings", _) => "meeting",
                ("minutes", "section") => "section",
                ("minutes", _) => "minutes",
                ("action-items", _) => "action",
                ("coas", "section") => "coa_section",
                ("coas", _) => "coa",
                ("workflow", _) => "transition",
                _ => panic!("no fixture for {name} in {template} (segment {i})"),
            };
            values.push(self.ids[key].to_string());
        }
        values
    }

    /// A valid body for a write route (top-level fields are mutated one at a time).
    fn body(&self, method: &Method, template: &str) -> Option<Value> {
        let id = |k: &str| self.ids[k];
        let body = match (method.as_str(), template) {
            ("POST", "/api/v1/entities") => json!({"entity_type": "probe", "name": "fz",
                "label": "L", "sort_order": 1, "properties": {"k": "v"}}),
            ("PATCH", "/api/v1/entities/{id}") => json!({"name": "pa", "label": "L",
                "sort_order": 2, "is_active": true, "properties": {"k": "v"}}),
            ("POST", "/api/v1/relations") => json!({"relation_type": "depends_on",
                "source_id": id("entity2"), "target_id": id("entity"), "properties": {"k": "v"}}),
            ("POST", "/api/v1/users") => json!({"username": "fzu", "display_name": "F",
                "email": "f@example.org", "password": "long enough pw", "roles": ["viewer"]}),
            ("PATCH", "/api/v1/users/{id}") => json!({"display_name": "F",
                "email": "f@example.org", "is_active": true, "roles": ["viewer"],
                "password": "long enough pw"}),
            ("POST", "/api/v1/tors") => json!({"name": "fzt", "label": "T",
                "description": "d", "parent_id": id("tor")}),
            ("PATCH", "/api/v1/tors/{id}") => json!({"label": "T", "description": "d",
                "parent_id": null, "is_active": true}),
            ("POST", "/api/v1/tors/{id}/functions") => json!({"slug": "fzf", "label": "F",
                "description": "d", "capabilities": ["tor.view"]}),
            ("PATCH", "/api/v1/tors/{id}/functions/{fid}") => json!({"label": "F",
                "description": "d", "capabilities": ["tor.view"]}),
            ("POST", "/api/v1/tokens") => json!({"name": "fz"}),
            ("POST", "/api/v1/items/{id}/transitions") => json!({"to": "rejected", "outcome": "o"}),
            ("POST", "/api/v1/tors/{id}/meetings") => json!({"date": "2031-02-03",
                "time": "10:00", "duration_minutes": 30, "location": "l", "title": "t"}),
            ("POST", "/api/v1/minutes/{id}/action-items") => json!({"description": "d",
                "owner_id": id("user"), "due_date": "2031-02-03"}),
            ("PUT", "/api/v1/minutes/{id}/sections/{section}") => json!({"body": "b"}),
            ("PUT", "/api/v1/meetings/{id}/attendance/{user_id}") => {
                json!({"attendance": "present"})
            }
            ("PATCH", "/api/v1/action-items/{id}") => json!({"done": true}),
            ("PUT", "/api/v1/coas/{id}/sections/{section}") => json!({"body": "b"}),
            ("POST", "/api/v1/items/{id}/coas") => json!({"title": "t", "description": "d",
                "sections": [{"title": "s", "body": "b"}]}),
            ("POST", "/api/v1/items/{id}/opinions") => json!({"text": "t"}),
            ("POST", _) | ("PATCH", _) => json!({}),
            _ => return None,
        };
        Some(body)
    }
}

fn fill(template: &str, values: &[String]) -> String {
    let mut values = values.iter();
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                values.next().cloned().unwrap_or_default()
            } else {
                s.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[track_caller]
fn assert_no_5xx(status: u16, what: &str, failures: &mut Vec<String>) {
    if status >= 500 {
        failures.push(format!("{status} for {what}"));
    }
}

#[tokio::test]
async fn no_documented_route_answers_5xx_to_hostile_input() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    let fixture = fixture(&app, &mut api).await;
    let mut rng = StdRng::seed_from_u64(SEED);
    let strings = hostile_strings();
    let mut failures = Vec::new();
    let mut requests = 0usize;
    let mut routes = documented_routes();
    // Deletions last, so the other routes keep their fixtures.
    routes.sort_by_key(|(m, _, _)| *m == Method::DELETE);
    for (method, template, query) in &routes {
        let path_values = fixture.path_values(template);
        let base_body = fixture.body(method, template);
        // Path parameters.
        for i in 0..path_values.len() {
            for value in strings.choose_multiple(&mut rng, VALUES_PER_FIELD) {
                let mut values = path_values.clone();
                values[i] = encode(value);
                let path = fill(template, &values);
                let body = base_body.clone().unwrap_or(Value::Null);
                let r = if base_body.is_some() {
                    api.send_json(method.clone(), &path, &body).await
                } else {
                    api.request(method.clone(), &path, None, true).await
                };
                requests += 1;
                assert_no_5xx(
                    r.status.as_u16(),
                    &format!("{method} {path}"),
                    &mut failures,
                );
            }
        }
        if *method == Method::DELETE {
            continue;
        }
        let path = fill(template, &path_values);
        // Query parameters (the documented ones, the paging ones, and an unknown one).
        let mut params: BTreeSet<String> = query.iter().cloned().collect();
        if *method == Method::GET {
            params.extend(["limit", "after", "type", "q", "zzz"].map(String::from));
        }
        for param in &params {
            for value in strings.choose_multiple(&mut rng, VALUES_PER_FIELD) {
                let full = format!("{path}?{param}={}", encode(value));
                let r = api.request(method.clone(), &full, None, true).await;
                requests += 1;
                assert_no_5xx(
                    r.status.as_u16(),
                    &format!("{method} {full}"),
                    &mut failures,
                );
            }
        }
        // Body fields, one at a time, and property values.
        if let Some(Value::Object(base)) = &base_body {
            let mut fields: Vec<String> = base.keys().cloned().collect();
            fields.push("unexpected".into());
            for field in fields {
                for _ in 0..VALUES_PER_FIELD {
                    let mut body = base.clone();
                    body.insert(field.clone(), hostile_json(&mut rng));
                    let r = api
                        .send_json(method.clone(), &path, &Value::Object(body))
                        .await;
                    requests += 1;
                    assert_no_5xx(
                        r.status.as_u16(),
                        &format!("{method} {path} with {field} mutated"),
                        &mut failures,
                    );
                }
            }
            if base.contains_key("properties") {
                for _ in 0..VALUES_PER_FIELD {
                    let mut body = base.clone();
                    let key = if rng.gen_bool(0.5) {
                        "k".to_owned()
                    } else {
                        strings.choose(&mut rng).unwrap().clone()
                    };
                    body.insert("properties".into(), json!({ key: hostile_json(&mut rng) }));
                    let r = api
                        .send_json(method.clone(), &path, &Value::Object(body))
                        .await;
                    requests += 1;
                    assert_no_5xx(
                        r.status.as_u16(),
                        &format!("{method} {path} properties"),
                        &mut failures,
                    );
                }
            }
            // Bodies that are not JSON at all.
            for raw in [&b"{\"name\": "[..], &[0xff, 0xfe, 0x00][..], &b"[]"[..]] {
                let r = api
                    .request(
                        method.clone(),
                        &path,
                        Some(("application/json", raw.to_vec())),
                        true,
                    )
                    .await;
                requests += 1;
                assert_no_5xx(
                    r.status.as_u16(),
                    &format!("{method} {path} raw"),
                    &mut failures,
                );
            }
        }
    }
    println!(
        "fuzzed {} routes with {requests} requests (seed {SEED})",
        routes.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `(action, [(name, value)])` of every POST form in `html`.
fn forms(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let needle = format!("{name}=\"");
        let start = tag.find(&needle)? + needle.len();
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    let mut found = Vec::new();
    for chunk in html.split("<form").skip(1) {
        let (tag, rest) = chunk.split_once('>').unwrap_or((chunk, ""));
        if attr(tag, "method").as_deref() != Some("post") {
            continue;
        }
        let Some(action) = attr(tag, "action") else {
            continue;
        };
        let body = rest.split("</form>").next().unwrap_or("");
        let mut fields = Vec::new();
        for element in body.split('<').skip(1) {
            let tag = element.split('>').next().unwrap_or("");
            let is_field = ["input ", "select ", "textarea "]
                .iter()
                .any(|t| tag.starts_with(t));
            let Some(name) = attr(tag, "name").filter(|_| is_field) else {
                continue;
            };
            let value = if tag.starts_with("select") {
                element
                    .split("<option")
                    .nth(1)
                    .and_then(|o| attr(o, "value"))
                    .unwrap_or_default()
            } else {
                attr(tag, "value").unwrap_or_default()
            };
            fields.push((name, value));
        }
        found.push((action, fields));
    }
    found
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn no_html_form_answers_5xx_to_hostile_input() {
    let app = TestApp::new().await;
    let (_, mut api) = admin(&app).await;
    let fixture = fixture(&app, &mut api).await;
    let mut browser = app.client();
    browser.login("admin", ADMIN_PASSWORD).await;
    let pages = [
        "/".to_owned(),
        "/tors".into(),
        "/tors/new".into(),
        format!("/tors/{}", fixture.ids["tor"]),
        "/users".into(),
        "/users/new".into(),
        format!("/users/{}", fixture.ids["user"]),
        "/roles".into(),
        "/account".into(),
        "/entities".into(),
        "/governance".into(),
        "/audit".into(),
        format!("/tors/{}/pipeline", fixture.ids["tor"]),
        format!("/meetings/{}", fixture.ids["meeting"]),
        format!("/minutes/{}", fixture.ids["minutes"]),
        "/workflow".into(),
    ];
    let mut all: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for page in &pages {
        let html = browser.get(page).await.text();
        for (action, fields) in forms(&html) {
            all.entry(action).or_insert(fields);
        }
    }
    let expected = [
        "/tors",
        "/users",
        "/roles",
        "/account/password",
        "/account/tokens",
        "/logout",
    ];
    for action in expected {
        assert!(
            all.contains_key(action),
            "no form posts to {action}: {:?}",
            all.keys()
        );
    }
    assert!(all.len() >= 12, "{:?}", all.keys());
    let mut rng = StdRng::seed_from_u64(SEED);
    let strings = hostile_strings();
    let mut failures = Vec::new();
    let mut requests = 0usize;
    // Logging out last keeps the session for the others.
    let mut actions: Vec<&String> = all.keys().collect();
    actions.sort_by_key(|a| a.as_str() == "/logout");
    for action in actions {
        let fields: Vec<(String, String)> = all[action]
            .iter()
            .filter(|(n, _)| n != "_csrf")
            .cloned()
            .collect();
        let mut names: Vec<String> = fields.iter().map(|(n, _)| n.clone()).collect();
        names.dedup();
        names.push("unexpected".into());
        for name in names {
            for value in strings.choose_multiple(&mut rng, VALUES_PER_FIELD) {
                let mut mutated: Vec<(&str, &str)> = fields
                    .iter()
                    .filter(|(n, _)| *n != name)
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                mutated.push((name.as_str(), value.as_str()));
                let r = browser.post_form(action, &mutated).await;
                requests += 1;
                assert_no_5xx(
                    r.status.as_u16(),
                    &format!(
                        "POST {action} with {name} = {:?}",
                        value.chars().take(20).collect::<String>()
                    ),
                    &mut failures,
                );
            }
        }
    }
    println!(
        "fuzzed {} forms with {requests} requests (seed {SEED})",
        all.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
