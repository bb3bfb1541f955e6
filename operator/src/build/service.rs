//! The ClusterIP Service in front of the app pods.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::deployment::PORT_NAME;
use super::{component, metadata};
use crate::names;
use crate::validate::ValidatedEnv;

/// The Service port the Ingress routes to.
pub const SERVICE_PORT: i32 = 80;

pub fn service(env: &ValidatedEnv, owner: &OwnerReference) -> Service {
    Service {
        metadata: metadata(env, owner, names::app(&env.name), Some(component::WEB)),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_owned()),
            selector: Some(names::selector_labels(&env.name)),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.to_owned()),
                port: SERVICE_PORT,
                target_port: Some(IntOrString::String(PORT_NAME.to_owned())),
                protocol: Some("TCP".to_owned()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::testing::*;

    #[test]
    fn the_service_routes_port_80_to_the_named_http_port_of_the_app_pods() {
        let s = service(&full(), &owner());
        assert_eq!(s.metadata.name.as_deref(), Some("staging"));
        let spec = s.spec.unwrap();
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector, Some(names::selector_labels("staging")));
        let ports = spec.ports.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(ports[0].port, 80);
        assert_eq!(ports[0].name.as_deref(), Some("http"));
        assert_eq!(
            ports[0].target_port,
            Some(IntOrString::String("http".into()))
        );
    }
}
