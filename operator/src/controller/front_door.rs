//! How users reach the environment: the Service, and the Ingress or the Gateway API
//! HTTPRoute. None depends on the database, and a Service without ready endpoints is
//! harmless, so they exist from the first pass (a certificate is issued meanwhile).
//!
//! The Gateway API is optional in a cluster: whether it is served is checked (and re-checked
//! every [`RECHECK`]) before anything touches an HTTPRoute, so clusters without it lose
//! nothing but routes, which then report `GatewayAPIMissing`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Api, Client};

use super::apply;
use super::error::{Error, ObserveError};
use super::observe::{self, Observed};
use super::status::IngressObservation;
use crate::build;
use crate::crd::AhltEnvironment;
use crate::gateway::{self, Gateway, HTTPRoute, ParentReference};
use crate::validate::{RoutePlan, ValidatedEnv};

/// How long an answer about the Gateway API's presence is trusted.
pub const RECHECK: Duration = Duration::from_secs(60);

/// The group/version whose HTTPRoutes the operator writes.
pub const GATEWAY_API: &str = "gateway.networking.k8s.io/v1";

/// Whether the cluster serves HTTPRoutes, asked of discovery and remembered for [`RECHECK`].
#[derive(Debug, Default)]
pub struct GatewayApi {
    checked: Mutex<Option<(bool, Instant)>>,
}

impl GatewayApi {
    pub async fn available(&self, client: &Client) -> Result<bool, ObserveError> {
        if let Some((available, at)) = *self.checked.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < RECHECK
        {
            return Ok(available);
        }
        let available = match client.list_api_group_resources(GATEWAY_API).await {
            Ok(list) => list.resources.iter().any(|r| r.name == "httproutes"),
            Err(kube::Error::Api(status)) if status.code == 404 => false,
            Err(source) => {
                return Err(ObserveError {
                    kind: "APIResourceList",
                    namespace: String::new(),
                    name: GATEWAY_API.to_owned(),
                    source: Box::new(source),
                });
            }
        };
        *self.checked.lock().unwrap_or_else(|e| e.into_inner()) = Some((available, Instant::now()));
        Ok(available)
    }
}

/// What the front door reports: the IngressReady observation and, for a route, the URL as
/// the Gateway serves it.
pub struct FrontDoor {
    pub ingress: IngressObservation,
    pub url: Option<String>,
}

/// Applies the Service and the Ingress or HTTPRoute the spec asks for (at once: neither
/// refers to the other's object), deletes the one it no longer asks for, and reads the
/// route's acceptance.
pub async fn apply(
    client: &Client,
    env: &AhltEnvironment,
    plan: &ValidatedEnv,
    observed: &Observed,
    owner: &OwnerReference,
) -> Result<FrontDoor, Error> {
    let mut service = build::service(plan, owner);
    apply::stamp(&mut service);
    let services: Api<Service> = Api::namespaced(client.clone(), &plan.namespace);
    let (_, door) = futures::try_join!(
        async {
            apply::apply_child(&services, &service, observed.service.as_ref())
                .await
                .map_err(Error::from)
        },
        entrance(client, env, plan, observed, owner),
    )?;
    Ok(door)
}

/// The Ingress or HTTPRoute, and the deletion of the one the spec no longer asks for.
async fn entrance(
    client: &Client,
    env: &AhltEnvironment,
    plan: &ValidatedEnv,
    observed: &Observed,
    owner: &OwnerReference,
) -> Result<FrontDoor, Error> {
    let ns = plan.namespace.as_str();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
    let routes: Api<HTTPRoute> = Api::namespaced(client.clone(), ns);
    let mut door = FrontDoor {
        ingress: IngressObservation::NotRequested,
        url: plan.url(),
    };
    match build::ingress(plan, owner) {
        Some(mut ingress) => {
            apply::stamp(&mut ingress);
            apply::apply_child(&ingresses, &ingress, observed.ingress.as_ref()).await?;
            door.ingress = IngressObservation::Configured;
        }
        None => {
            if let Some(stale) = &observed.ingress {
                apply::delete_owned(&ingresses, stale, env).await?;
            }
        }
    }
    match (build::http_route(plan, owner), plan.route.as_ref()) {
        (Some(mut route), Some(route_plan)) => {
            if !observed.gateway_api {
                door.ingress = IngressObservation::GatewayApiMissing;
                return Ok(door);
            }
            apply::stamp(&mut route);
            let applied = apply::apply_child(&routes, &route, observed.route.as_ref()).await?;
            door.ingress = route_observation(&applied, &route.spec.parent_refs);
            door.url = Some(route_plan.url(serves_https(client, route_plan, &route).await));
        }
        _ => {
            if let Some(stale) = &observed.route {
                apply::delete_owned(&routes, stale, env).await?;
            }
        }
    }
    Ok(door)
}

/// HTTPS when the first parent's Gateway serves the first host name over HTTPS; the spec's
/// `tls` hint when the Gateway cannot be read. Read live: Gateways are not the operator's
/// and not watched.
async fn serves_https(client: &Client, plan: &RoutePlan, route: &HTTPRoute) -> bool {
    let (Some(parent), Some(host)) = (route.spec.parent_refs.first(), plan.hostnames.first())
    else {
        return plan.tls_hint;
    };
    let namespace = parent.namespace.as_deref().unwrap_or_default();
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), namespace);
    match observe::get(&gateways, &parent.name).await {
        Ok(Some(gateway)) => gateway::serves_https(&gateway, parent, host),
        Ok(None) | Err(_) => plan.tls_hint,
    }
}

/// The route's acceptance: every parent must report `Accepted` and `ResolvedRefs` True for
/// the route's current generation.
pub fn route_observation(route: &HTTPRoute, parents: &[ParentReference]) -> IngressObservation {
    let generation = route.metadata.generation;
    let statuses = route
        .status
        .as_ref()
        .map(|s| s.parents.as_slice())
        .unwrap_or_default();
    for parent in parents {
        let name = match &parent.section_name {
            Some(section) => format!(
                "{}/{} ({section})",
                parent.namespace.as_deref().unwrap_or_default(),
                parent.name
            ),
            None => format!(
                "{}/{}",
                parent.namespace.as_deref().unwrap_or_default(),
                parent.name
            ),
        };
        let Some(status) = statuses
            .iter()
            .find(|s| same_parent(&s.parent_ref, parent, route))
        else {
            return IngressObservation::RouteWaiting {
                message: format!("waiting for Gateway {name} to accept the HTTPRoute"),
            };
        };
        for type_ in ["Accepted", "ResolvedRefs"] {
            let condition = status.conditions.iter().find(|c| c.type_ == type_);
            match condition {
                Some(c)
                    if c.observed_generation.is_some() && c.observed_generation < generation =>
                {
                    return IngressObservation::RouteWaiting {
                        message: format!(
                            "waiting for Gateway {name} to look at the current HTTPRoute"
                        ),
                    };
                }
                Some(c) if c.status == "True" => {}
                Some(c) => {
                    return IngressObservation::RouteRefused {
                        reason: gateway_reason(&c.reason),
                        message: format!(
                            "Gateway {name} ({}): {type_} is {} with reason {}: {}",
                            status.controller_name, c.status, c.reason, c.message
                        ),
                    };
                }
                None => {
                    return IngressObservation::RouteWaiting {
                        message: format!("waiting for Gateway {name} to report {type_}"),
                    };
                }
            }
        }
    }
    IngressObservation::RouteAccepted
}

/// Reasons a Gateway reports for a route it refuses (Gateway API v1); others are folded
/// into `RouteNotAccepted` with the original in the message.
pub const GATEWAY_REASONS: [&str; 8] = [
    "NotAllowedByListeners",
    "NoMatchingListenerHostname",
    "NoMatchingParent",
    "UnsupportedValue",
    "RefNotPermitted",
    "InvalidKind",
    "BackendNotFound",
    "UnsupportedProtocol",
];

fn gateway_reason(reason: &str) -> &'static str {
    GATEWAY_REASONS
        .into_iter()
        .find(|r| *r == reason)
        .unwrap_or(super::status::Reason::RouteNotAccepted.as_str())
}

fn same_parent(reported: &ParentReference, ours: &ParentReference, route: &HTTPRoute) -> bool {
    let route_ns = route.metadata.namespace.as_deref();
    reported.name == ours.name
        && reported.namespace.as_deref().or(route_ns) == ours.namespace.as_deref().or(route_ns)
        && (reported.section_name == ours.section_name || ours.section_name.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{HTTPRouteSpec, HTTPRouteStatus, RouteParentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    fn parent(name: &str) -> ParentReference {
        ParentReference {
            name: name.into(),
            namespace: Some("gw".into()),
            ..Default::default()
        }
    }

    fn condition(type_: &str, status: &str, reason: &str, generation: i64) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: format!("{type_} says {reason}"),
            observed_generation: Some(generation),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    fn route(generation: i64, parents: Vec<(&str, Vec<Condition>)>) -> HTTPRoute {
        let mut route = HTTPRoute::new("dev", HTTPRouteSpec::default_for_test());
        route.metadata.namespace = Some("team".into());
        route.metadata.generation = Some(generation);
        route.status = Some(HTTPRouteStatus {
            parents: parents
                .into_iter()
                .map(|(name, conditions)| RouteParentStatus {
                    parent_ref: parent(name),
                    controller_name: "istio.io/gateway-controller".into(),
                    conditions,
                })
                .collect(),
        });
        route
    }

    impl HTTPRouteSpec {
        fn default_for_test() -> Self {
            Self {
                parent_refs: vec![],
                hostnames: vec![],
                rules: vec![],
            }
        }
    }

    fn accepted(generation: i64) -> Vec<Condition> {
        vec![
            condition("Accepted", "True", "Accepted", generation),
            condition("ResolvedRefs", "True", "ResolvedRefs", generation),
        ]
    }

    #[test]
    fn accepted_only_when_every_parent_accepts_the_current_generation() {
        let ours = [parent("a"), parent("b")];
        let both = route(2, vec![("a", accepted(2)), ("b", accepted(2))]);
        assert_eq!(
            route_observation(&both, &ours),
            IngressObservation::RouteAccepted
        );

        let one = route(2, vec![("a", accepted(2))]);
        assert!(matches!(
            route_observation(&one, &ours),
            IngressObservation::RouteWaiting { message } if message.contains("gw/b")
        ));

        let stale = route(3, vec![("a", accepted(2)), ("b", accepted(3))]);
        assert!(matches!(
            route_observation(&stale, &ours),
            IngressObservation::RouteWaiting { .. }
        ));
    }

    #[test]
    fn a_refusing_parent_gives_its_reason() {
        let ours = [parent("a")];
        let refused = route(
            1,
            vec![(
                "a",
                vec![
                    condition("Accepted", "False", "NotAllowedByListeners", 1),
                    condition("ResolvedRefs", "True", "ResolvedRefs", 1),
                ],
            )],
        );
        match route_observation(&refused, &ours) {
            IngressObservation::RouteRefused { reason, message } => {
                assert_eq!(reason, "NotAllowedByListeners");
                assert!(message.contains("istio.io/gateway-controller"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let unresolved = route(
            1,
            vec![(
                "a",
                vec![
                    condition("Accepted", "True", "Accepted", 1),
                    condition("ResolvedRefs", "False", "SomethingVendorSpecific", 1),
                ],
            )],
        );
        assert!(matches!(
            route_observation(&unresolved, &ours),
            IngressObservation::RouteRefused {
                reason: "RouteNotAccepted",
                ..
            }
        ));
    }
}
