//! Pod pieces shared by the Deployment and the Jobs: restricted pod security, the env the
//! app reads, the writable /tmp.

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapEnvSource, Container, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, LocalObjectReference, PodSecurityContext, PodSpec, SeccompProfile,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::env_vars::*;
use crate::names;
use crate::validate::ValidatedEnv;

/// Container name in every pod the operator creates.
pub const CONTAINER: &str = "ahlt";
/// Non-root user and group the app runs as (any non-zero id works; the image needs no
/// particular user because the root filesystem is read-only).
pub const RUN_AS_ID: i64 = 10001;
const TMP_VOLUME: &str = "tmp";

/// Which operator-managed secret variables a pod gets: each only what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretEnv {
    pub session_key: bool,
    pub admin_password: bool,
    pub graph_credentials: bool,
}

fn secret_var(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// DATABASE_URL always; the others as asked; then `spec.app.env` (the schema refuses names
/// the operator manages, so the extra variables cannot shadow these).
pub fn env(env: &ValidatedEnv, wanted: SecretEnv) -> Vec<EnvVar> {
    let app_secret = names::app_secret(&env.name);
    let mut vars = vec![secret_var(
        DATABASE_URL,
        &env.database.secret_name,
        DATABASE_URL,
    )];
    if wanted.session_key {
        vars.push(secret_var(SESSION_KEY, &app_secret, SESSION_KEY));
    }
    if wanted.admin_password {
        vars.push(secret_var(ADMIN_PASSWORD, &app_secret, ADMIN_PASSWORD));
    }
    if wanted.graph_credentials
        && let Some(secret) = env
            .graph
            .as_ref()
            .and_then(|g| g.credentials_secret.as_ref())
    {
        vars.push(secret_var(GRAPH_USERNAME, secret, "username"));
        vars.push(secret_var(GRAPH_PASSWORD, secret, "password"));
    }
    vars.extend(env.app.extra_env.iter().cloned());
    vars
}

pub fn env_from_config(env: &ValidatedEnv) -> Vec<EnvFromSource> {
    vec![EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: names::config_map(&env.name),
            optional: Some(false),
        }),
        ..EnvFromSource::default()
    }]
}

/// The `restricted` Pod Security Standard, container side.
pub fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: None,
        }),
        ..SecurityContext::default()
    }
}

/// The `restricted` Pod Security Standard, pod side.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS_ID),
        run_as_group: Some(RUN_AS_ID),
        fs_group: Some(RUN_AS_ID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        ..PodSecurityContext::default()
    }
}

/// The only writable path with a read-only root filesystem.
pub fn tmp_mount() -> VolumeMount {
    VolumeMount {
        name: TMP_VOLUME.to_owned(),
        mount_path: "/tmp".to_owned(),
        ..VolumeMount::default()
    }
}

/// A container with the fields every operator-made container shares.
pub fn base_container(env: &ValidatedEnv, image: &str, args: &[&str]) -> Container {
    Container {
        name: CONTAINER.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some(env.pull_policy.as_str().to_owned()),
        args: Some(args.iter().map(|a| (*a).to_owned()).collect()),
        env_from: Some(env_from_config(env)),
        resources: Some(env.resources.clone()),
        security_context: Some(container_security_context()),
        volume_mounts: Some(vec![tmp_mount()]),
        ..Container::default()
    }
}

/// A pod running `container`: no API token (the app never calls the API), no service
/// links (they would inject variables named after unrelated Services), restricted security.
pub fn pod_spec(
    env: &ValidatedEnv,
    container: Container,
    restart_policy: Option<&str>,
    termination_grace_period_seconds: i64,
) -> PodSpec {
    PodSpec {
        containers: vec![container],
        restart_policy: restart_policy.map(str::to_owned),
        automount_service_account_token: Some(false),
        enable_service_links: Some(false),
        image_pull_secrets: (!env.pull_secrets.is_empty()).then(|| {
            env.pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        security_context: Some(pod_security_context()),
        termination_grace_period_seconds: Some(termination_grace_period_seconds),
        volumes: Some(vec![Volume {
            name: TMP_VOLUME.to_owned(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: None,
                size_limit: Some(Quantity("64Mi".to_owned())),
            }),
            ..Volume::default()
        }]),
        ..PodSpec::default()
    }
}

#[cfg(test)]
pub(crate) mod assertions {
    //! Checks every operator-made pod must pass.

    use k8s_openapi::api::core::v1::PodSpec;

    use crate::validate::ValidatedEnv;

    /// Restricted pod security, pull secrets, /tmp, no token, pull policy and image.
    pub fn assert_hardened_pod(pod: &PodSpec, env: &ValidatedEnv, image: &str) {
        assert_eq!(pod.automount_service_account_token, Some(false));
        assert_eq!(pod.enable_service_links, Some(false));
        let psc = pod.security_context.as_ref().unwrap();
        assert_eq!(psc.run_as_non_root, Some(true));
        assert!(psc.run_as_user.unwrap() > 0);
        assert!(psc.fs_group.unwrap() > 0);
        assert_eq!(
            psc.seccomp_profile.as_ref().unwrap().type_,
            "RuntimeDefault"
        );
        let pull_secrets: Vec<_> = pod
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(pull_secrets, env.pull_secrets);

        assert_eq!(pod.containers.len(), 1);
        let c = &pod.containers[0];
        assert_eq!(c.name, "ahlt");
        assert_eq!(c.image.as_deref(), Some(image));
        assert_eq!(
            c.image_pull_policy.as_deref(),
            Some(env.pull_policy.as_str())
        );
        let csc = c.security_context.as_ref().unwrap();
        assert_eq!(csc.allow_privilege_escalation, Some(false));
        assert_eq!(csc.read_only_root_filesystem, Some(true));
        assert_eq!(
            csc.capabilities.as_ref().unwrap().drop.as_deref(),
            Some(&["ALL".to_owned()][..])
        );
        assert!(csc.privileged.is_none());

        let volume = &pod.volumes.as_ref().unwrap()[0];
        assert!(volume.empty_dir.is_some());
        let mount = &c.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(
            (mount.name.as_str(), mount.mount_path.as_str()),
            (volume.name.as_str(), "/tmp")
        );

        let env_from = c.env_from.as_ref().unwrap();
        assert_eq!(
            env_from[0].config_map_ref.as_ref().unwrap().name,
            crate::names::config_map(&env.name)
        );
    }

    /// `(name, secret, key)` of each secret-backed variable, in order.
    pub fn secret_refs(pod: &PodSpec) -> Vec<(String, String, String)> {
        pod.containers[0]
            .env
            .iter()
            .flatten()
            .filter_map(|e| {
                let r = e.value_from.as_ref()?.secret_key_ref.as_ref()?;
                Some((e.name.clone(), r.name.clone(), r.key.clone()))
            })
            .collect()
    }

    /// Names of the plain (`value`) variables, in order.
    pub fn plain_vars(pod: &PodSpec) -> Vec<(String, String)> {
        pod.containers[0]
            .env
            .iter()
            .flatten()
            .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
            .collect()
    }
}
