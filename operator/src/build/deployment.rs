//! The app Deployment.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{ContainerPort, HTTPGetAction, PodTemplateSpec, Probe};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{self, SecretEnv};
use super::{CONFIG_HASH_ANNOTATION, component, labels, metadata};
use crate::names;
use crate::validate::ValidatedEnv;

/// Name of the container port; the Service and probes refer to it by name.
pub const PORT_NAME: &str = "http";
/// Long enough for in-flight requests and the pool to drain after SIGTERM.
pub const TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

fn http_probe(path: &str, period: i32, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(PORT_NAME.to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failure_threshold),
        success_threshold: Some(1),
        ..Probe::default()
    }
}

/// `image` is the image to serve: it stays the old one until the new image's migrations
/// succeeded. `config_hash` (see [`super::config_hash`]) rolls the pods when config changes.
pub fn deployment(
    env: &ValidatedEnv,
    owner: &OwnerReference,
    image: &str,
    config_hash: &str,
) -> Deployment {
    let selector = names::selector_labels(&env.name);
    let mut pod_labels = labels(env, None);
    pod_labels.extend(selector.clone());

    let mut container = pod::base_container(env, image, &["serve"]);
    container.ports = Some(vec![ContainerPort {
        name: Some(PORT_NAME.to_owned()),
        container_port: names::HTTP_PORT,
        protocol: Some("TCP".to_owned()),
        ..ContainerPort::default()
    }]);
    container.env = Some(pod::env(
        env,
        SecretEnv {
            session_key: true,
            admin_password: true,
            graph_credentials: true,
        },
    ));
    // Startup allows two minutes to listen; then liveness only restarts a wedged process.
    // Readiness (database reachable, schema current) takes pods out of rotation without
    // restarting them.
    container.startup_probe = Some(http_probe("/healthz", 2, 60));
    container.liveness_probe = Some(http_probe("/healthz", 10, 3));
    container.readiness_probe = Some(http_probe("/readyz", 5, 3));

    Deployment {
        metadata: metadata(env, owner, names::app(&env.name), Some(component::WEB)),
        spec: Some(DeploymentSpec {
            replicas: Some(env.replicas),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(selector),
                match_expressions: None,
            },
            // A new pod must be ready before an old one goes: no capacity dip on rollout.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(BTreeMap::from([(
                        CONFIG_HASH_ANNOTATION.to_owned(),
                        config_hash.to_owned(),
                    )])),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod::pod_spec(
                    env,
                    container,
                    None,
                    TERMINATION_GRACE_PERIOD_SECONDS,
                )),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::pod::assertions::*;
    use crate::build::testing::*;

    fn build(env: &ValidatedEnv) -> Deployment {
        deployment(env, &owner(), "registry.example.org/acme/ahlt:v0", "abc123")
    }

    #[test]
    fn replicas_selector_and_strategy() {
        let d = build(&full());
        let spec = d.spec.unwrap();
        assert_eq!(spec.replicas, Some(3));
        assert_eq!(
            spec.selector.match_labels.as_ref(),
            Some(&names::selector_labels("staging"))
        );
        let template_labels = spec.template.metadata.unwrap().labels.unwrap();
        for (k, v) in names::selector_labels("staging")
            .into_iter()
            .chain(names::labels("staging"))
        {
            assert_eq!(template_labels.get(&k), Some(&v), "template label {k}");
        }
        let strategy = spec.strategy.unwrap();
        assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
        let rolling = strategy.rolling_update.unwrap();
        assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
        assert_eq!(rolling.max_surge, Some(IntOrString::Int(1)));
    }

    #[test]
    fn profile_default_replicas_apply() {
        assert_eq!(build(&minimal()).spec.unwrap().replicas, Some(1));
    }

    #[test]
    fn the_pod_is_hardened_and_serves_the_given_image() {
        let env = full();
        let pod = build(&env).spec.unwrap().template.spec.unwrap();
        assert_hardened_pod(&pod, &env, "registry.example.org/acme/ahlt:v0");
        assert_eq!(pod.restart_policy, None);
        assert_eq!(
            pod.termination_grace_period_seconds,
            Some(TERMINATION_GRACE_PERIOD_SECONDS)
        );
        let c = &pod.containers[0];
        assert_eq!(c.args.as_deref(), Some(&["serve".to_owned()][..]));
        let port = &c.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.container_port),
            (Some("http"), 8080)
        );
        assert_eq!(c.resources.as_ref(), Some(&env.resources));
    }

    #[test]
    fn the_pull_policy_and_secrets_come_from_the_spec() {
        let pod = build(&full()).spec.unwrap().template.spec.unwrap();
        assert_eq!(
            pod.containers[0].image_pull_policy.as_deref(),
            Some("Always")
        );
        let names: Vec<_> = pod
            .image_pull_secrets
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["gitlab-registry", "mirror"]);

        let minimal = build(&minimal()).spec.unwrap().template.spec.unwrap();
        assert_eq!(
            minimal.containers[0].image_pull_policy.as_deref(),
            Some("IfNotPresent")
        );
        assert!(minimal.image_pull_secrets.is_none());
    }

    #[test]
    fn secrets_reach_the_container_by_reference() {
        let pod = build(&full()).spec.unwrap().template.spec.unwrap();
        let refs = secret_refs(&pod);
        let expected = [
            ("DATABASE_URL", "staging-db", "DATABASE_URL"),
            ("SESSION_KEY", "staging-app", "SESSION_KEY"),
            ("ADMIN_PASSWORD", "staging-app", "ADMIN_PASSWORD"),
            ("GRAPH_USERNAME", "neo4j-credentials", "username"),
            ("GRAPH_PASSWORD", "neo4j-credentials", "password"),
        ];
        assert_eq!(
            refs,
            expected
                .iter()
                .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
                .collect::<Vec<_>>()
        );
        assert_eq!(
            plain_vars(&pod),
            [("DATABASE_MAX_CONNECTIONS".to_owned(), "20".to_owned())]
        );
    }

    #[test]
    fn without_graph_credentials_there_are_no_graph_variables() {
        let pod = build(&minimal()).spec.unwrap().template.spec.unwrap();
        let names: Vec<_> = secret_refs(&pod).into_iter().map(|r| r.0).collect();
        assert_eq!(names, ["DATABASE_URL", "SESSION_KEY", "ADMIN_PASSWORD"]);
    }

    #[test]
    fn probes_hit_readyz_and_healthz_on_the_http_port() {
        let pod = build(&full()).spec.unwrap().template.spec.unwrap();
        let c = &pod.containers[0];
        let target = |p: &Option<Probe>| {
            let get = p.as_ref().unwrap().http_get.as_ref().unwrap();
            (get.path.clone().unwrap(), get.port.clone())
        };
        let http = IntOrString::String("http".into());
        assert_eq!(target(&c.readiness_probe), ("/readyz".into(), http.clone()));
        assert_eq!(target(&c.liveness_probe), ("/healthz".into(), http.clone()));
        assert_eq!(target(&c.startup_probe), ("/healthz".into(), http));
        let liveness = c.liveness_probe.as_ref().unwrap();
        assert!(
            liveness.failure_threshold.unwrap() >= 3,
            "no restart on one blip"
        );
    }

    #[test]
    fn the_config_hash_is_a_pod_template_annotation() {
        let spec = build(&full()).spec.unwrap();
        let annotations = spec.template.metadata.unwrap().annotations.unwrap();
        assert_eq!(annotations[CONFIG_HASH_ANNOTATION], "abc123");
    }
}
