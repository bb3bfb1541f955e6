//! A mocked Kubernetes API server for reconcile scenarios: the script states the exact
//! sequence of requests (method and path with query) it expects, inspects their JSON bodies
//! and answers like the API server. A missing, extra or out-of-order request fails the test.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ahlt_operator::controller::{Context, DatabaseProvisioner, Error, ProvisionError, reconcile};
use ahlt_operator::crd::AhltEnvironment;
use ahlt_operator::database::{AdminCredentials, DatabaseTarget};
use ahlt_operator::http::Health;
use ahlt_operator::metrics::Metrics;
use futures::FutureExt;
use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower_test::mock::{self, Handle, SendResponse};

pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    /// Becomes true once the reconcile pass returned: no request can follow.
    done: watch::Receiver<bool>,
}

/// One request, awaiting its response.
pub struct Call {
    pub method: String,
    pub uri: String,
    pub body: Value,
    send: SendResponse<Response<Body>>,
}

impl ApiServer {
    /// The next request must be `method uri`.
    pub async fn expect(&mut self, method: &str, uri: &str) -> Call {
        let next = tokio::select! {
            biased;
            next = self.handle.next_request() => next,
            _ = self.done.wait_for(|d| *d) => None,
        };
        let Some((request, send)) = next else {
            panic!("missing request: expected {method} {uri}, but the pass sent nothing more");
        };
        let (parts, body) = request.into_parts();
        let got = format!("{} {}", parts.method, parts.uri);
        assert_eq!(got, format!("{method} {uri}"), "unexpected request");
        let bytes = body.collect().await.expect("request body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("request body is JSON")
        };
        Call {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            body,
            send,
        }
    }

    /// No further request may come.
    pub async fn expect_end(mut self) {
        let next = tokio::select! {
            biased;
            next = self.handle.next_request() => next,
            _ = self.done.wait_for(|d| *d) => None,
        };
        if let Some((request, _)) = next {
            panic!("extra request: {} {}", request.method(), request.uri());
        }
    }

    /// GET that answers with `object`, or 404 when `None`.
    pub async fn get(&mut self, uri: &str, object: Option<&Value>) {
        let call = self.expect("GET", uri).await;
        match object {
            Some(o) => call.respond(o.clone()),
            None => call.not_found(),
        }
    }
}

impl Call {
    pub fn respond(self, value: Value) {
        self.respond_with(StatusCode::OK, value);
    }

    pub fn respond_with(self, status: StatusCode, value: Value) {
        let response = Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&value).unwrap()))
            .unwrap();
        self.send.send_response(response);
    }

    pub fn not_found(self) {
        self.respond_with(
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        );
    }

    /// Answers a server-side apply with the applied object (what the server would return)
    /// and hands back the body.
    pub fn echo(self) -> Value {
        let body = self.body.clone();
        self.respond(body.clone());
        body
    }
}

/// What a fake provisioner was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbCall {
    Ensure {
        host: String,
        database: String,
        role: String,
        password: String,
        owner: String,
    },
    Drop {
        database: String,
        role: String,
        owner: String,
    },
}

/// Records calls; fails with `failure` when set.
#[derive(Default)]
pub struct FakeProvisioner {
    pub calls: Mutex<Vec<DbCall>>,
    pub failure: Option<ProvisionError>,
}

impl FakeProvisioner {
    pub fn failing(reason: &'static str, message: &str) -> Self {
        Self {
            calls: Mutex::default(),
            failure: Some(ProvisionError {
                reason,
                message: message.into(),
                transient: true,
            }),
        }
    }

    pub fn calls(&self) -> Vec<DbCall> {
        self.calls.lock().unwrap().clone()
    }

    fn outcome(&self) -> Result<(), ProvisionError> {
        self.failure.clone().map_or(Ok(()), Err)
    }
}

impl DatabaseProvisioner for FakeProvisioner {
    fn ensure<'a>(
        &'a self,
        admin: &'a AdminCredentials,
        target: &'a DatabaseTarget,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        self.calls.lock().unwrap().push(DbCall::Ensure {
            host: admin.host.clone(),
            database: target.database.clone(),
            role: target.role.clone(),
            password: target.password.clone(),
            owner: target.owner.clone(),
        });
        async move { self.outcome() }.boxed()
    }

    fn drop_database<'a>(
        &'a self,
        _admin: &'a AdminCredentials,
        database: &'a str,
        role: &'a str,
        owner: &'a str,
    ) -> BoxFuture<'a, Result<(), ProvisionError>> {
        self.calls.lock().unwrap().push(DbCall::Drop {
            database: database.into(),
            role: role.into(),
            owner: owner.into(),
        });
        async move { self.outcome() }.boxed()
    }
}

/// A Context whose client talks to the returned mock server.
pub fn context(
    provisioner: Arc<FakeProvisioner>,
) -> (Arc<Context>, Handle<Request<Body>, Response<Body>>) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let ctx = Context::new(
        client,
        provisioner,
        Arc::new(Metrics::default()),
        Arc::new(Health::new(Duration::from_secs(3600), None)),
        Some("test".into()),
    );
    (Arc::new(ctx), handle)
}

/// Runs one reconcile pass of `env` against `script`, which must consume every request.
pub async fn scenario<S, F>(
    env: &Value,
    ctx: Arc<Context>,
    handle: Handle<Request<Body>, Response<Body>>,
    script: S,
) -> Result<Action, Error>
where
    S: FnOnce(ApiServer) -> F,
    F: Future<Output = ApiServer> + Send + 'static,
{
    let (done_tx, done) = watch::channel(false);
    let server = ApiServer { handle, done };
    let verifier = tokio::spawn(script(server).then(|s| s.expect_end()));
    let env: AhltEnvironment =
        serde_json::from_value(env.clone()).expect("fixture is an AhltEnvironment");
    let result = reconcile(Arc::new(env), ctx).await;
    // The verifier may already have failed (and dropped its receiver).
    let _ = done_tx.send(true);
    if let Err(e) = verifier.await {
        std::panic::resume_unwind(e.into_panic());
    }
    result
}

pub const NS: &str = "team";
pub const NAME: &str = "dev";
pub const IMAGE_1: &str = "registry.example/ahlt:1";
pub const IMAGE_2: &str = "registry.example/ahlt:2";

pub fn env_uri() -> String {
    format!("/apis/ahlt.io/v1alpha1/namespaces/{NS}/ahltenvironments/{NAME}?")
}

pub fn status_uri() -> String {
    format!("/apis/ahlt.io/v1alpha1/namespaces/{NS}/ahltenvironments/{NAME}/status?")
}

pub fn events_uri() -> String {
    format!("/apis/events.k8s.io/v1/namespaces/{NS}/events?")
}

/// URI of a namespaced object (`core` group when `group` is empty).
pub fn uri(group_version: &str, plural: &str, name: &str) -> String {
    let prefix = if group_version == "v1" {
        "/api/v1".to_owned()
    } else {
        format!("/apis/{group_version}")
    };
    format!("{prefix}/namespaces/{NS}/{plural}/{name}")
}

/// Server-side apply URI with the operator's field manager.
pub fn apply_uri(group_version: &str, plural: &str, name: &str) -> String {
    format!(
        "{}?&force=true&fieldManager=ahlt-operator",
        uri(group_version, plural, name)
    )
}

/// An AhltEnvironment as the API server returns it.
pub fn env(generation: i64, tag: &str) -> Value {
    json!({
        "apiVersion": "ahlt.io/v1alpha1",
        "kind": "AhltEnvironment",
        "metadata": {
            "name": NAME, "namespace": NS, "uid": "uid-dev",
            "generation": generation, "resourceVersion": format!("{generation}00"),
        },
        "spec": {
            "environment": "dev",
            "image": {"repository": "registry.example/ahlt", "tag": tag},
            "database": {"adminSecretRef": {"name": "pg-admin"}},
            "ingress": {"host": "dev.local"},
        }
    })
}

pub fn with_status(mut env: Value, status: &Value) -> Value {
    env["status"] = status.clone();
    env
}

pub fn with_finalizer(mut env: Value) -> Value {
    env["metadata"]["finalizers"] = json!(["ahlt.io/database"]);
    env
}

pub fn admin_secret() -> Value {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "pg-admin", "namespace": NS},
        "data": {
            "host": b64("postgres.db"), "port": b64("5432"),
            "username": b64("postgres"), "password": b64("admin-pw"),
        }
    })
}

/// Condition `type_` of a status JSON.
pub fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status}"))
}

/// `(status, reason, observedGeneration)` of a condition.
pub fn cond(status: &Value, type_: &str) -> (String, String, i64) {
    let c = condition(status, type_);
    (
        c["status"].as_str().unwrap().into(),
        c["reason"].as_str().unwrap().into(),
        c["observedGeneration"].as_i64().unwrap(),
    )
}

pub fn secret_string(secret: &Value, key: &str) -> String {
    use base64::Engine;
    let b64 = secret["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in secret"));
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

pub fn labels(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["metadata"]["labels"].clone()).unwrap_or_default()
}
