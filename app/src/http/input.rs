//! The boundary check every request passes before sessions, CSRF or handlers see it:
//!
//! - bodies over [`MAX_BODY_BYTES`] are refused with 413 (before anything is buffered when
//!   `Content-Length` says so);
//! - text PostgreSQL cannot store (the NUL character, in `text` and in `jsonb`) is refused
//!   with 422 naming the field, in the query string, in form bodies and in JSON bodies (keys
//!   and string values at any depth).
//!
//! Under `/api` the answer is the JSON error; elsewhere the HTML error page.

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::AppError;
use super::pages::errors::HtmlError;

/// Largest request body accepted anywhere (1 MiB).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Middleware: see the module docs.
pub async fn guard(req: Request, next: Next) -> Response {
    let api = is_api(req.uri().path());
    let refuse = |err: AppError| -> Response {
        if api {
            err.into_response()
        } else {
            HtmlError(err).into_response()
        }
    };
    if let Some(query) = req.uri().query()
        && let Some(field) = nul_in_form(query.as_bytes())
    {
        return refuse(nul_error("query parameter", &field));
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return refuse(too_large());
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (parts, body) = req.into_parts();
    let bytes: Bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return refuse(too_large()),
    };
    if content_type.starts_with("application/x-www-form-urlencoded") {
        if let Some(field) = nul_in_form(&bytes) {
            return refuse(nul_error("field", &field));
        }
    } else if is_json(&content_type)
        && may_hold_nul(&bytes)
        && let Ok(value) = serde_json::from_slice::<Value>(&bytes)
        && let Some(path) = nul_in_json(&value, String::new())
    {
        return refuse(nul_error("field", &path));
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn too_large() -> AppError {
    AppError::PayloadTooLarge(format!(
        "the request body is larger than {} bytes",
        MAX_BODY_BYTES
    ))
}

fn nul_error(what: &str, name: &str) -> AppError {
    AppError::Validation(format!(
        "{what} {} contains a NUL character, which cannot be stored",
        crate::text::clip(name)
    ))
}

/// The first form (or query) field whose name or value holds a NUL character.
fn nul_in_form(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        .map(|(k, _)| k.replace('\0', "\\0"))
}

/// Cheap pre-check: a JSON text can only hold a NUL as a raw byte or as `\u0000`.
fn may_hold_nul(body: &[u8]) -> bool {
    body.contains(&0) || body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
}

/// The path (`properties.k`, `roles[2]`) of the first key or string holding a NUL.
fn nul_in_json(value: &Value, path: String) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(if path.is_empty() {
            "(body)".into()
        } else {
            path
        }),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_in_json(v, format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let here = if path.is_empty() {
                k.replace('\0', "\\0")
            } else {
                format!("{path}.{}", k.replace('\0', "\\0"))
            };
            if k.contains('\0') {
                Some(here)
            } else {
                nul_in_json(v, here)
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nul_in_forms_and_json() {
        assert_eq!(nul_in_form(b"a=1&name=a%00b"), Some("name".into()));
        assert_eq!(nul_in_form(b"a=1&b=2"), None);
        let v = json!({"name": "x", "properties": {"k": "a\u{0}b"}});
        assert_eq!(nul_in_json(&v, String::new()), Some("properties.k".into()));
        let v = json!({"roles": ["a", "\u{0}"]});
        assert_eq!(nul_in_json(&v, String::new()), Some("roles[1]".into()));
        assert_eq!(nul_in_json(&json!({"a": [1, "b"]}), String::new()), None);
        assert!(may_hold_nul(br#"{"a":"\u0000"}"#));
        assert!(!may_hold_nul(br#"{"a":"b"}"#));
    }
}
