//! The fake API server's HTTP side: paths, verbs, patch types, lists and watches.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::store::{ApiError, ChangeType, Key, Kind, Store, Subresource, find_kind};
use super::{RequestRecord, Shared};

pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let shared = shared.clone();
            async move { handle(shared, method, uri, headers, body).await }
        },
    );
    let _ = axum::serve(listener, app).await;
}

/// Where a request points.
struct Target {
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Subresource,
}

fn parse_path(path: &str) -> Option<Target> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group_version, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ((*version).to_owned(), rest),
        ["apis", group, version, rest @ ..] => (format!("{group}/{version}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some((*ns).to_owned()), rest),
        rest => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, Subresource::Main),
        [plural, name] => (*plural, Some((*name).to_owned()), Subresource::Main),
        [plural, name, "status"] => (*plural, Some((*name).to_owned()), Subresource::Status),
        _ => return None,
    };
    Some(Target {
        kind: find_kind(&group_version, plural)?,
        namespace,
        name,
        subresource,
    })
}

fn query_map(query: &str) -> HashMap<String, String> {
    form_urlencoded_pairs(query).collect()
}

fn form_urlencoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k), decode(v))
    })
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// The discovery document (APIResourceList) of a group/version.
fn discovery(group_version: &str) -> Value {
    let resources: Vec<Value> = super::store::KINDS
        .iter()
        .filter(|k| k.group_version == group_version)
        .map(|k| {
            json!({"name": k.plural, "singularName": "", "namespaced": k.namespaced, "kind": k.kind,
                   "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn json_response(status: u16, body: &Value) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(serde_json::to_vec(body).expect("JSON")))
        .expect("response")
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.to_status())
}

async fn handle(
    shared: Arc<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Infallible> {
    let query = uri.query().unwrap_or_default().to_owned();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let gateway_path = uri.path().contains(super::store::GATEWAY_API);
    let response = match parse_path(uri.path()) {
        _ if gateway_path && !shared.options.gateway_api => error_response(&ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )),
        None if method == Method::GET
            && uri.path() == format!("/apis/{}", super::store::GATEWAY_API) =>
        {
            json_response(200, &discovery(super::store::GATEWAY_API))
        }
        None => error_response(&ApiError::new(
            404,
            "NotFound",
            format!("the fake API server does not serve {}", uri.path()),
        )),
        Some(target) => route(&shared, &method, target, &query, &content_type, &body),
    };
    shared.log(RequestRecord {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query,
        content_type,
        status: response.status().as_u16(),
    });
    Ok(response)
}

fn route(
    shared: &Arc<Shared>,
    method: &Method,
    target: Target,
    query: &str,
    content_type: &str,
    body: &[u8],
) -> Response {
    let params = query_map(query);
    let result = match (method.as_str(), &target.name) {
        ("GET", None) if matches!(params.get("watch").map(String::as_str), Some("true" | "1")) => {
            return watch(shared.clone(), target, &params);
        }
        ("GET", None) => Ok((200, list(&shared.store(), &target, &params))),
        ("GET", Some(name)) => {
            let key = key(&target, name);
            shared
                .store()
                .get(&key)
                .map(|s| (200, s.object.clone()))
                .ok_or_else(|| ApiError::not_found(&key))
        }
        ("POST", None) => create(shared, &target, &params, body),
        ("PUT", Some(name)) => replace(shared, &target, name, &params, body),
        ("PATCH", Some(name)) => patch(shared, &target, name, &params, content_type, body),
        ("DELETE", Some(name)) => {
            let key = key(&target, name);
            shared
                .write(|s| {
                    let stored = s.get(&key).ok_or_else(|| ApiError::not_found(&key))?;
                    check_delete_preconditions(&stored.object, body)?;
                    s.delete(&key)
                })
                .map(|o| (200, o))
        }
        _ => Err(ApiError::new(405, "MethodNotAllowed", "method not allowed")),
    };
    match result {
        Ok((code, object)) => json_response(code, &object),
        Err(e) => error_response(&e),
    }
}

fn key(target: &Target, name: &str) -> Key {
    Key {
        plural: target.kind.plural,
        namespace: target.namespace.clone().unwrap_or_default(),
        name: name.to_owned(),
    }
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml::from_slice(body))
        .map_err(|e| ApiError::new(400, "BadRequest", format!("invalid body: {e}")))
}

fn manager(params: &HashMap<String, String>) -> String {
    params
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| "unknown".to_owned())
}

/// DeleteOptions' `preconditions` (uid, resourceVersion) that the stored object does not
/// meet are a conflict, as on a real server.
fn check_delete_preconditions(stored: &Value, body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    let options = parse_body(body)?;
    for field in ["uid", "resourceVersion"] {
        if let Some(want) = options["preconditions"][field].as_str()
            && Some(want) != stored["metadata"][field].as_str()
        {
            return Err(ApiError::conflict(format!(
                "Precondition failed: {field} in precondition: {want}, {field} in object meta: {}",
                stored["metadata"][field].as_str().unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// A stale `metadata.resourceVersion` in a body is a conflict, as on a real server.
fn check_precondition(stored: &Value, body: &Value) -> Result<(), ApiError> {
    match body["metadata"]["resourceVersion"].as_str() {
        Some(rv) if Some(rv) != stored["metadata"]["resourceVersion"].as_str() => {
            Err(ApiError::conflict(
                "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
            ))
        }
        _ => Ok(()),
    }
}

fn create(
    shared: &Shared,
    target: &Target,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let object = parse_body(body)?;
    let name = object["metadata"]["name"]
        .as_str()
        .ok_or_else(|| ApiError::new(422, "Invalid", "metadata.name is required"))?;
    let key = key(target, name);
    let manager = manager(params);
    shared
        .write(|s| s.create(&key, object.clone(), &manager))
        .map(|o| (201, o))
}

fn replace(
    shared: &Shared,
    target: &Target,
    name: &str,
    params: &HashMap<String, String>,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let object = parse_body(body)?;
    let key = key(target, name);
    let manager = manager(params);
    shared
        .write(|s| {
            s.update(&key, &manager, target.subresource, |stored| {
                check_precondition(stored, &object)?;
                Ok(object.clone())
            })
        })
        .map(|o| (200, o))
}

fn patch(
    shared: &Shared,
    target: &Target,
    name: &str,
    params: &HashMap<String, String>,
    content_type: &str,
    body: &[u8],
) -> Result<(u16, Value), ApiError> {
    let key = key(target, name);
    let manager = manager(params);
    let media = content_type.split(';').next().unwrap_or_default().trim();
    match media {
        "application/apply-patch+yaml" => {
            if !params.contains_key("fieldManager") {
                return Err(ApiError::new(
                    400,
                    "BadRequest",
                    "fieldManager is required for apply requests",
                ));
            }
            let config = parse_body(body)?;
            let force = params.get("force").is_some_and(|f| f == "true");
            shared
                .write(|s| s.apply(&key, &config, &manager, force, target.subresource))
                .map(|o| (200, o))
        }
        // Strategic merge patch is treated as a JSON merge patch (see the module docs).
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
            let patch = parse_body(body)?;
            shared
                .write(|s| {
                    s.update(&key, &manager, target.subresource, |stored| {
                        check_precondition(stored, &patch)?;
                        let mut merged = stored.clone();
                        json_patch::merge(&mut merged, &patch);
                        Ok(merged)
                    })
                })
                .map(|o| (200, o))
        }
        "application/json-patch+json" => {
            let ops: json_patch::Patch = serde_json::from_slice(body).map_err(|e| {
                ApiError::new(400, "BadRequest", format!("invalid JSON patch: {e}"))
            })?;
            shared
                .write(|s| {
                    s.update(&key, &manager, target.subresource, |stored| {
                        // Like the API server (evanphx/json-patch): testing a missing path
                        // for null succeeds.
                        let ops: Vec<_> = ops
                            .0
                            .iter()
                            .filter(|op| {
                                !matches!(op, json_patch::PatchOperation::Test(t)
                                    if t.value.is_null() && stored.pointer(t.path.as_str()).is_none())
                            })
                            .cloned()
                            .collect();
                        let mut patched = stored.clone();
                        json_patch::patch(&mut patched, &ops).map_err(|e| {
                            ApiError::new(422, "Invalid", format!("the JSON patch failed: {e}"))
                        })?;
                        Ok(patched)
                    })
                })
                .map(|o| (200, o))
        }
        other => Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("unsupported patch type {other:?}"),
        )),
    }
}

/// A label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated.
fn matches_selector(object: &Value, selector: Option<&String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let labels = &object["metadata"]["labels"];
    selector.split(',').filter(|r| !r.is_empty()).all(|req| {
        if let Some((k, v)) = req.split_once("!=") {
            labels[k.trim()].as_str() != Some(v.trim())
        } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
            labels[k.trim()].as_str() == Some(v.trim())
        } else if let Some(k) = req.strip_prefix('!') {
            labels.get(k.trim()).is_none()
        } else {
            labels.get(req.trim()).is_some()
        }
    })
}

fn in_scope(target: &Target, namespace: &str) -> bool {
    target.namespace.as_deref().is_none_or(|ns| ns == namespace)
}

fn list(store: &Store, target: &Target, params: &HashMap<String, String>) -> Value {
    let items: Vec<Value> = store
        .objects
        .iter()
        .filter(|(k, s)| {
            k.plural == target.kind.plural
                && in_scope(target, &k.namespace)
                && matches_selector(&s.object, params.get("labelSelector"))
        })
        .map(|(_, s)| s.object.clone())
        .collect();
    json!({
        "apiVersion": target.kind.group_version,
        "kind": format!("{}List", target.kind.kind),
        "metadata": {"resourceVersion": store.rv.to_string()},
        "items": items,
    })
}

/// What a watch has sent so far.
struct Cursor {
    shared: Arc<Shared>,
    target: Target,
    selector: Option<String>,
    since: u64,
    /// Initial ADDED events of a watch without a resourceVersion.
    initial: Vec<Value>,
    deadline: tokio::time::Instant,
    bookmarks: bool,
    pulse: tokio::sync::watch::Receiver<u64>,
    done: bool,
}

fn watch_line(type_: &str, object: &Value) -> Result<Bytes, Infallible> {
    let mut line = serde_json::to_vec(&json!({"type": type_, "object": object})).expect("JSON");
    line.push(b'\n');
    Ok(Bytes::from(line))
}

impl Cursor {
    /// The next change this watch should see, if one is stored.
    fn next_change(&mut self) -> Option<(ChangeType, Value)> {
        let store = self.shared.store();
        let start = store.history.partition_point(|c| c.rv <= self.since);
        for change in &store.history[start..] {
            self.since = change.rv;
            if change.plural == self.target.kind.plural
                && in_scope(&self.target, &change.namespace)
                && matches_selector(&change.object, self.selector.as_ref())
            {
                return Some((change.type_, change.object.clone()));
            }
        }
        None
    }

    fn bookmark(&self) -> Value {
        json!({
            "apiVersion": self.target.kind.group_version,
            "kind": self.target.kind.kind,
            "metadata": {"resourceVersion": self.shared.store().rv.to_string()},
        })
    }
}

fn watch(shared: Arc<Shared>, target: Target, params: &HashMap<String, String>) -> Response {
    let selector = params.get("labelSelector").cloned();
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(1800);
    let (since, initial) = match params.get("resourceVersion").map(String::as_str) {
        Some(rv) if !rv.is_empty() && rv != "0" => match rv.parse::<u64>() {
            Ok(rv) => (rv, Vec::new()),
            Err(_) => {
                return error_response(&ApiError::new(
                    400,
                    "BadRequest",
                    "invalid resourceVersion",
                ));
            }
        },
        _ => {
            let store = shared.store();
            let listed = list(&store, &target, params);
            let items = listed["items"].as_array().cloned().unwrap_or_default();
            (store.rv, items)
        }
    };
    let cursor = Cursor {
        pulse: shared.pulse.subscribe(),
        shared,
        target,
        selector,
        since,
        initial,
        deadline: tokio::time::Instant::now() + Duration::from_secs(timeout),
        bookmarks: params
            .get("allowWatchBookmarks")
            .is_some_and(|b| b == "true"),
        done: false,
    };
    let stream = futures::stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        if let Some(object) = cursor.initial.pop() {
            return Some((watch_line("ADDED", &object), cursor));
        }
        loop {
            cursor.pulse.borrow_and_update();
            if let Some((type_, object)) = cursor.next_change() {
                return Some((watch_line(type_.as_str(), &object), cursor));
            }
            tokio::select! {
                changed = cursor.pulse.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep_until(cursor.deadline) => {
                    // The server ends a watch at its timeout, with a bookmark when asked.
                    cursor.done = true;
                    if cursor.bookmarks {
                        let bookmark = cursor.bookmark();
                        return Some((watch_line("BOOKMARK", &bookmark), cursor));
                    }
                    return None;
                }
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("response")
}
