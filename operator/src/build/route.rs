//! The HTTPRoute: the environment's host names on the Gateways it names, to its Service.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::metadata;
use crate::gateway::{
    GROUP, HTTPBackendRef, HTTPPathMatch, HTTPRoute, HTTPRouteMatch, HTTPRouteRule, HTTPRouteSpec,
    ParentReference,
};
use crate::names;
use crate::validate::ValidatedEnv;

/// `None` without `spec.route`.
pub fn http_route(env: &ValidatedEnv, owner: &OwnerReference) -> Option<HTTPRoute> {
    let route = env.route.as_ref()?;
    let mut object = HTTPRoute::new(
        &names::app(&env.name),
        HTTPRouteSpec {
            parent_refs: route
                .parents
                .iter()
                .map(|p| ParentReference {
                    group: Some(GROUP.to_owned()),
                    kind: Some("Gateway".to_owned()),
                    name: p.name.clone(),
                    namespace: Some(p.namespace.clone()),
                    section_name: p.section_name.clone(),
                })
                .collect(),
            hostnames: route.hostnames.clone(),
            rules: vec![HTTPRouteRule {
                matches: vec![HTTPRouteMatch {
                    path: Some(HTTPPathMatch {
                        type_: Some("PathPrefix".to_owned()),
                        value: Some(route.path_prefix.clone()),
                    }),
                }],
                backend_refs: vec![HTTPBackendRef {
                    name: names::app(&env.name),
                    port: Some(names::HTTP_PORT),
                }],
            }],
        },
    );
    object.metadata = metadata(env, owner, names::app(&env.name), None);
    Some(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::{cr, owner};
    use crate::crd::{RouteParentRef, RouteSpec};
    use crate::validate::validate;

    fn with_route() -> ValidatedEnv {
        let mut env = cr("dev", "team");
        env.spec.route = Some(RouteSpec {
            parent_refs: vec![
                RouteParentRef {
                    name: "istio-ingressgateway".into(),
                    namespace: Some("istio-system".into()),
                    section_name: Some("https".into()),
                },
                RouteParentRef {
                    name: "internal".into(),
                    namespace: None,
                    section_name: None,
                },
            ],
            hostnames: vec!["dev.example.org".into(), "ahlt-dev.example.org".into()],
            path_prefix: Some("/ahlt".into()),
            tls: Some(true),
        });
        validate(&env).unwrap()
    }

    #[test]
    fn every_field_lands() {
        let env = with_route();
        let route = http_route(&env, &owner()).unwrap();
        assert_eq!(route.metadata.name.as_deref(), Some("dev"));
        assert_eq!(route.metadata.namespace.as_deref(), Some("team"));
        assert_eq!(route.metadata.owner_references, Some(vec![owner()]));
        assert_eq!(
            route.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"],
            "ahlt-operator"
        );
        let parents = &route.spec.parent_refs;
        assert_eq!(parents.len(), 2);
        assert_eq!(parents[0].name, "istio-ingressgateway");
        assert_eq!(parents[0].namespace.as_deref(), Some("istio-system"));
        assert_eq!(parents[0].section_name.as_deref(), Some("https"));
        assert_eq!(parents[0].kind.as_deref(), Some("Gateway"));
        assert_eq!(
            parents[1].namespace.as_deref(),
            Some("team"),
            "defaults to the env's"
        );
        assert_eq!(parents[1].section_name, None);
        assert_eq!(
            route.spec.hostnames,
            vec!["dev.example.org", "ahlt-dev.example.org"]
        );
        let rule = &route.spec.rules[0];
        let path = rule.matches[0].path.as_ref().unwrap();
        assert_eq!(path.type_.as_deref(), Some("PathPrefix"));
        assert_eq!(path.value.as_deref(), Some("/ahlt"));
        assert_eq!(rule.backend_refs[0].name, "dev");
        assert_eq!(rule.backend_refs[0].port, Some(names::HTTP_PORT));
        let json = serde_json::to_value(&route).unwrap();
        assert_eq!(json["apiVersion"], "gateway.networking.k8s.io/v1");
        assert_eq!(json["kind"], "HTTPRoute");
        assert_eq!(env.url().as_deref(), Some("https://dev.example.org/ahlt"));
    }

    #[test]
    fn no_route_without_spec_route_and_a_proxy_is_trusted_with_one() {
        let plain = validate(&cr("dev", "team")).unwrap();
        assert!(http_route(&plain, &owner()).is_none());
        assert!(!plain.exposed());
        let env = with_route();
        assert!(env.exposed());
        assert!(env.app.cookie_secure, "tls hint makes cookies secure");
        let config = crate::build::config_map(&env, &owner());
        assert_eq!(config.data.unwrap()["TRUST_FORWARDED_FOR"], "true");
    }
}
