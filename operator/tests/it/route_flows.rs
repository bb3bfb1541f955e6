//! Gateway API HTTPRoutes against the stateful fake API server: applied like every child,
//! their acceptance by each parent Gateway mapped into IngressReady, switched with an
//! Ingress, and a clear condition on clusters without the Gateway API.

use crate::support;

use ahlt_operator::testing::{FakeApiServer, Options};
use serde_json::{Value, json};
use support::*;

const GW_NS: &str = "gateways";

fn route_env() -> Value {
    let mut env = env("1");
    let spec = env["spec"].as_object_mut().unwrap();
    spec.remove("ingress");
    spec.insert(
        "route".into(),
        json!({
            "parentRefs": [{"name": "public", "namespace": GW_NS, "sectionName": "https"}],
            "hostnames": ["dev.example.org"],
        }),
    );
    env
}

fn gateway(protocol: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "public", "namespace": GW_NS},
        "spec": {"gatewayClassName": "istio", "listeners": [
            {"name": "https", "port": 443, "protocol": protocol, "hostname": "*.example.org"}
        ]}
    })
}

/// Plays the Gateway's controller: reports on the route's current generation.
fn report(cluster: &Cluster, accepted: (&str, &str)) {
    cluster.api.update_status("httproutes", NS, "dev", |route| {
        let generation = route["metadata"]["generation"].clone();
        route["status"] = json!({"parents": [{
            "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway",
                          "name": "public", "namespace": GW_NS, "sectionName": "https"},
            "controllerName": "istio.io/gateway-controller",
            "conditions": [
                {"type": "Accepted", "status": accepted.0, "reason": accepted.1,
                 "message": "", "observedGeneration": generation,
                 "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "ResolvedRefs", "status": "True", "reason": "ResolvedRefs",
                 "message": "", "observedGeneration": generation,
                 "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ]
        }]});
    });
}

#[tokio::test]
async fn a_route_is_applied_and_ready_once_its_gateway_accepts_it() {
    let cluster = Cluster::start().await;
    cluster.api.create(gateway("HTTPS"));
    cluster.ready_without_front_door(route_env()).await;

    let route = cluster.child("httproutes", "dev").expect("HTTPRoute");
    assert_eq!(route["spec"]["hostnames"], json!(["dev.example.org"]));
    assert_eq!(route["spec"]["parentRefs"][0]["namespace"], GW_NS);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["name"], "dev");
    assert_eq!(
        route["metadata"]["ownerReferences"][0]["uid"],
        cluster.env()["metadata"]["uid"]
    );
    assert!(cluster.child("ingresses", "dev").is_none());
    let s = cluster.status();
    assert_eq!(
        cond(&s, "IngressReady"),
        ("False".into(), "Pending".into(), 1)
    );
    assert!(
        condition(&s, "IngressReady")["message"]
            .as_str()
            .unwrap()
            .contains("gateways/public")
    );
    assert_eq!(cond(&s, "Ready").0, "False", "not reachable yet");

    report(&cluster, ("True", "Accepted"));
    cluster.settle().await;
    let s = cluster.status();
    assert_eq!(
        cond(&s, "IngressReady"),
        ("True".into(), "Accepted".into(), 1)
    );
    assert_eq!(cond(&s, "Ready"), ("True".into(), "Available".into(), 1));
    // The listener speaks HTTPS, so the URL does, whatever the spec's hint says.
    assert_eq!(s["url"], "https://dev.example.org");
    let config = cluster.child("configmaps", "dev-config").unwrap();
    assert_eq!(config["data"]["TRUST_FORWARDED_FOR"], "true");
}

#[tokio::test]
async fn a_refusing_gateway_is_reported_with_its_reason() {
    let cluster = Cluster::start().await;
    cluster.api.create(gateway("HTTP"));
    cluster.ready_without_front_door(route_env()).await;
    report(&cluster, ("False", "NotAllowedByListeners"));
    cluster.settle().await;
    let s = cluster.status();
    assert_eq!(
        cond(&s, "IngressReady"),
        ("False".into(), "NotAllowedByListeners".into(), 1)
    );
    assert_ne!(cond(&s, "Ready").0, "True");
    assert_eq!(s["url"], "http://dev.example.org", "an HTTP listener");
    assert!(
        cluster
            .events()
            .contains(&("Warning".into(), "NotAllowedByListeners".into()))
    );
}

#[tokio::test]
async fn switching_between_ingress_and_route_deletes_the_other() {
    let cluster = Cluster::start().await;
    cluster.ready(env("1")).await;
    assert!(cluster.child("ingresses", "dev").is_some());

    cluster.edit(|spec| {
        let route = route_env()["spec"]["route"].clone();
        let spec = spec.as_object_mut().unwrap();
        spec.remove("ingress");
        spec.insert("route".into(), route);
    });
    cluster.settle().await;
    assert!(cluster.child("ingresses", "dev").is_none());
    assert!(cluster.child("httproutes", "dev").is_some());

    cluster.edit(|spec| {
        let spec = spec.as_object_mut().unwrap();
        spec.remove("route");
        spec.insert("ingress".into(), json!({"host": "dev.local"}));
    });
    cluster.settle().await;
    assert!(cluster.child("httproutes", "dev").is_none());
    assert!(cluster.child("ingresses", "dev").is_some());
    assert_eq!(cond(&cluster.status(), "Ready").1, "Available");
}

#[tokio::test]
async fn without_the_gateway_api_a_route_is_reported_and_nothing_else_degrades() {
    let api = FakeApiServer::start_with(Options { gateway_api: false }).await;
    api.create(admin_secret());
    let url = api.url();
    let cluster = Cluster::on(api, &url, FakeProvisioner::default());
    cluster.ready_without_front_door(route_env()).await;
    let s = cluster.status();
    assert_eq!(
        cond(&s, "IngressReady"),
        ("False".into(), "GatewayAPIMissing".into(), 1)
    );
    assert_eq!(cond(&s, "WorkloadAvailable").1, "Available");
    assert!(cluster.child("services", "dev").is_some());
    assert!(
        condition(&s, "IngressReady")["message"]
            .as_str()
            .unwrap()
            .contains("gateway.networking.k8s.io/v1")
    );

    // An environment with an Ingress on the same cluster is not affected.
    cluster.edit(|spec| {
        let spec = spec.as_object_mut().unwrap();
        spec.remove("route");
        spec.insert("ingress".into(), json!({"host": "dev.local"}));
    });
    cluster.settle().await;
    assert_eq!(cond(&cluster.status(), "Ready").1, "Available");
    let route_requests: Vec<_> = cluster
        .api
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/httproutes"))
        .collect();
    assert!(route_requests.is_empty(), "{route_requests:?}");
}

#[tokio::test]
async fn the_running_controller_follows_the_route_status_by_its_watch() {
    let cluster = Cluster::start().await;
    cluster.api.create(gateway("HTTPS"));
    let _running = cluster.run();
    cluster.api.create(route_env());
    cluster
        .wait_child(
            "jobs",
            &ahlt_operator::names::migration_job(NAME, IMAGE_1),
            "the Job",
            |_| true,
        )
        .await;
    cluster.complete_migration(IMAGE_1);
    cluster
        .wait_child("deployments", "dev", "the Deployment", |_| true)
        .await;
    cluster.roll_out();
    cluster
        .wait_child("httproutes", "dev", "the HTTPRoute", |_| true)
        .await;
    report(&cluster, ("True", "Accepted"));
    cluster
        .wait_status("Ready through the route", |s| {
            has(s, "Ready", ("True", "Available")) && has(s, "IngressReady", ("True", "Accepted"))
        })
        .await;
}
