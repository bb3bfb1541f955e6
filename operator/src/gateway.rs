//! The parts of the Gateway API (`gateway.networking.k8s.io/v1`) the operator writes and
//! reads: HTTPRoute (spec and the parents' status) and Gateway (its listeners, to tell
//! whether the route is served over HTTPS). k8s-openapi has no Gateway API types; these
//! carry only the fields used, and ignore the rest when reading.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "gateway.networking.k8s.io";

/// An HTTPRoute: which Gateways it attaches to, for which host names, to which Service.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    plural = "httproutes",
    namespaced,
    status = "HTTPRouteStatus",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HTTPRouteRule>,
}

/// A Gateway (or one of its listeners, by `sectionName`) a route attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HTTPRouteMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<HTTPBackendRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HTTPPathMatch>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct HTTPPathMatch {
    /// `PathPrefix` or `Exact`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A Service backend (the default kind).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HTTPBackendRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// What each parent's controller says about the route.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct HTTPRouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    pub parent_ref: ParentReference,
    #[serde(default)]
    pub controller_name: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A Gateway: only its listeners are read.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "Gateway",
    plural = "gateways",
    namespaced,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    #[serde(default)]
    pub gateway_class_name: String,
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
pub struct Listener {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default)]
    pub port: i32,
    /// `HTTP`, `HTTPS`, `TLS`, ...
    #[serde(default)]
    pub protocol: String,
}

/// Whether `gateway` serves `parent`'s route over HTTPS: the named listener, or (without a
/// `sectionName`) any listener for `host`, speaks HTTPS.
pub fn serves_https(gateway: &Gateway, parent: &ParentReference, host: &str) -> bool {
    gateway
        .spec
        .listeners
        .iter()
        .filter(|l| match &parent.section_name {
            Some(section) => &l.name == section,
            None => l.hostname.as_deref().is_none_or(|h| host_matches(h, host)),
        })
        .any(|l| l.protocol == "HTTPS")
}

/// A listener host name (possibly `*.example.org`) matching `host`.
fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(listeners: Vec<(&str, Option<&str>, &str)>) -> Gateway {
        Gateway::new(
            "gw",
            GatewaySpec {
                gateway_class_name: "istio".into(),
                listeners: listeners
                    .into_iter()
                    .map(|(name, hostname, protocol)| Listener {
                        name: name.into(),
                        hostname: hostname.map(Into::into),
                        port: 443,
                        protocol: protocol.into(),
                    })
                    .collect(),
            },
        )
    }

    fn parent(section: Option<&str>) -> ParentReference {
        ParentReference {
            name: "gw".into(),
            section_name: section.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn https_is_read_from_the_listener_the_route_attaches_to() {
        let gw = gateway(vec![
            ("http", None, "HTTP"),
            ("https", Some("*.example.org"), "HTTPS"),
        ]);
        assert!(serves_https(&gw, &parent(Some("https")), "dev.example.org"));
        assert!(!serves_https(&gw, &parent(Some("http")), "dev.example.org"));
        assert!(serves_https(&gw, &parent(None), "dev.example.org"));
        assert!(!serves_https(&gw, &parent(None), "dev.other.org"));
        assert!(!serves_https(&gw, &parent(None), "example.org"));
    }

    #[test]
    fn unknown_fields_of_real_objects_are_ignored() {
        let route: HTTPRoute = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "dev", "namespace": "team"},
            "spec": {"parentRefs": [{"name": "gw", "port": 443}], "hostnames": ["a.example"],
                     "rules": [{"timeouts": {"request": "10s"}, "backendRefs": [{"name": "dev", "port": 8080, "weight": 1}]}]},
            "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": "istio.io/gateway-controller",
                        "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                                        "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}]}]}
        }))
        .unwrap();
        assert_eq!(route.spec.rules[0].backend_refs[0].port, Some(8080));
        assert_eq!(
            route.status.unwrap().parents[0].conditions[0].type_,
            "Accepted"
        );
    }
}
