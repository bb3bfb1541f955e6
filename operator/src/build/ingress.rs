//! The Ingress, when the spec asks for one.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::service::SERVICE_PORT;
use super::{component, metadata};
use crate::crd::IssuerKind;
use crate::names;
use crate::validate::{TlsPlan, ValidatedEnv};

pub const ISSUER_ANNOTATION: &str = "cert-manager.io/issuer";
pub const CLUSTER_ISSUER_ANNOTATION: &str = "cert-manager.io/cluster-issuer";

/// `None` when `spec.ingress` is unset (the reconciler then deletes an existing one).
/// The user's annotations come first; the cert-manager annotation the TLS plan needs wins.
pub fn ingress(env: &ValidatedEnv, owner: &OwnerReference) -> Option<Ingress> {
    let plan = env.ingress.as_ref()?;
    let mut annotations = plan.annotations.clone();
    let tls_secret = match &plan.tls {
        None => None,
        Some(TlsPlan::Secret { secret_name }) => Some(secret_name.clone()),
        Some(TlsPlan::Issuer {
            name,
            kind,
            secret_name,
        }) => {
            let key = match kind {
                IssuerKind::Issuer => ISSUER_ANNOTATION,
                IssuerKind::ClusterIssuer => CLUSTER_ISSUER_ANNOTATION,
            };
            annotations.insert(key.to_owned(), name.clone());
            Some(secret_name.clone())
        }
    };

    let mut meta = metadata(env, owner, names::app(&env.name), Some(component::WEB));
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
    Some(Ingress {
        metadata: meta,
        spec: Some(IngressSpec {
            ingress_class_name: plan.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: Some(plan.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".to_owned()),
                        path_type: "Prefix".to_owned(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: names::app(&env.name),
                                port: Some(ServiceBackendPort {
                                    number: Some(SERVICE_PORT),
                                    name: None,
                                }),
                            }),
                            resource: None,
                        },
                    }],
                }),
            }]),
            tls: tls_secret.map(|secret_name| {
                vec![IngressTLS {
                    hosts: Some(vec![plan.host.clone()]),
                    secret_name: Some(secret_name),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::build::testing::*;
    use crate::validate::IngressPlan;

    fn with_ingress(tls: Option<TlsPlan>) -> ValidatedEnv {
        let mut env = minimal();
        env.ingress = Some(IngressPlan {
            host: "dev.local".into(),
            class_name: None,
            annotations: BTreeMap::new(),
            tls,
        });
        env
    }

    #[test]
    fn no_ingress_in_the_spec_means_none() {
        assert!(ingress(&minimal(), &owner()).is_none());
    }

    #[test]
    fn the_host_routes_everything_to_the_service() {
        let i = ingress(&full(), &owner()).unwrap();
        assert_eq!(i.metadata.name.as_deref(), Some("staging"));
        let spec = i.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        let rules = spec.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].host.as_deref(), Some("staging.example.org"));
        let paths = &rules[0].http.as_ref().unwrap().paths;
        assert_eq!(paths.len(), 1);
        assert_eq!(paths[0].path.as_deref(), Some("/"));
        assert_eq!(paths[0].path_type, "Prefix");
        let backend = paths[0].backend.service.as_ref().unwrap();
        assert_eq!(backend.name, "staging");
        assert_eq!(backend.port.as_ref().unwrap().number, Some(80));
    }

    #[test]
    fn a_cluster_issuer_adds_its_annotation_and_the_derived_secret() {
        let i = ingress(&full(), &owner()).unwrap();
        let annotations = i.metadata.annotations.unwrap();
        assert_eq!(annotations[CLUSTER_ISSUER_ANNOTATION], "letsencrypt");
        assert!(!annotations.contains_key(ISSUER_ANNOTATION));
        assert_eq!(
            annotations["nginx.ingress.kubernetes.io/proxy-body-size"], "8m",
            "user annotations are kept"
        );
        let tls = i.spec.unwrap().tls.unwrap();
        assert_eq!(tls.len(), 1);
        assert_eq!(tls[0].hosts, Some(vec!["staging.example.org".to_owned()]));
        assert_eq!(tls[0].secret_name.as_deref(), Some("staging-tls"));
    }

    #[test]
    fn a_namespaced_issuer_uses_the_issuer_annotation() {
        let env = with_ingress(Some(TlsPlan::Issuer {
            name: "selfsigned".into(),
            kind: IssuerKind::Issuer,
            secret_name: "dev-tls".into(),
        }));
        let i = ingress(&env, &owner()).unwrap();
        let annotations = i.metadata.annotations.unwrap();
        assert_eq!(annotations[ISSUER_ANNOTATION], "selfsigned");
        assert!(!annotations.contains_key(CLUSTER_ISSUER_ANNOTATION));
        assert_eq!(
            i.spec.unwrap().tls.unwrap()[0].secret_name.as_deref(),
            Some("dev-tls")
        );
    }

    #[test]
    fn an_existing_secret_is_used_as_is_without_cert_manager() {
        let env = with_ingress(Some(TlsPlan::Secret {
            secret_name: "dev-local-mkcert".into(),
        }));
        let i = ingress(&env, &owner()).unwrap();
        assert!(i.metadata.annotations.is_none());
        let spec = i.spec.unwrap();
        assert!(spec.ingress_class_name.is_none());
        let tls = spec.tls.unwrap();
        assert_eq!(tls[0].hosts, Some(vec!["dev.local".to_owned()]));
        assert_eq!(tls[0].secret_name.as_deref(), Some("dev-local-mkcert"));
    }

    #[test]
    fn no_tls_means_no_tls_section() {
        let i = ingress(&with_ingress(None), &owner()).unwrap();
        assert!(i.spec.unwrap().tls.is_none());
    }
}
