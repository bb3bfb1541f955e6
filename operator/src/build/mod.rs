//! Pure builders: from a [`ValidatedEnv`] plus explicit inputs (owner, generated secrets,
//! images) to the Kubernetes objects the operator applies. No client, no I/O, no clock, no
//! randomness: the same inputs always give the same objects, so server-side apply of an
//! unchanged environment is a no-op.
//!
//! Every object is named by [`crate::names`], lives in the environment's namespace, carries
//! the standard labels and a controller ownerReference (see [`owner::owner_reference`]).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use crate::names;
use crate::validate::ValidatedEnv;

pub mod config_map;
pub mod deployment;
pub mod ingress;
pub mod jobs;
pub mod owner;
mod pod;
pub mod route;
pub mod secrets;
pub mod service;

pub use config_map::{config_map, env_name};
pub use deployment::deployment;
pub use ingress::ingress;
pub use jobs::{migration_job, resync_job};
pub use owner::{OwnerRefError, owner_reference};
pub use route::http_route;
pub use secrets::{
    DatabaseSecretParts, app_secret, database_secret, generate_admin_password,
    generate_database_password, generate_session_key,
};
pub use service::service;

/// Environment variables the operator sets (ConfigMap keys and Secret-backed variables).
pub mod env_vars {
    pub const APP_ENV: &str = "APP_ENV";
    pub const RUST_LOG: &str = "RUST_LOG";
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    pub const COOKIE_SECURE: &str = "COOKIE_SECURE";
    pub const AHLT_ENV_NAME: &str = "AHLT_ENV_NAME";
    pub const PORT: &str = "PORT";
    pub const TRUST_FORWARDED_FOR: &str = "TRUST_FORWARDED_FOR";
    pub const GRAPH_URI: &str = "GRAPH_URI";
    pub const GRAPH_USERNAME: &str = "GRAPH_USERNAME";
    pub const GRAPH_PASSWORD: &str = "GRAPH_PASSWORD";
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const SESSION_KEY: &str = "SESSION_KEY";
    pub const ADMIN_PASSWORD: &str = "ADMIN_PASSWORD";

    /// Every variable the operator sets. `spec.app.env` may not set any of them: the schema's
    /// rule is generated from this list ([`reserved_rule`]), and a test checks that every
    /// variable the builders emit is on it.
    pub const MANAGED: [&str; 13] = [
        APP_ENV,
        RUST_LOG,
        LOG_FORMAT,
        COOKIE_SECURE,
        AHLT_ENV_NAME,
        PORT,
        TRUST_FORWARDED_FOR,
        GRAPH_URI,
        GRAPH_USERNAME,
        GRAPH_PASSWORD,
        DATABASE_URL,
        SESSION_KEY,
        ADMIN_PASSWORD,
    ];

    /// The CEL rule on `spec.app.env` that refuses [`MANAGED`] names: a variable the
    /// builder also sets would be a duplicate, which makes the Deployment apply fail.
    pub fn reserved_rule() -> String {
        let names: Vec<String> = MANAGED.iter().map(|n| format!("'{n}'")).collect();
        format!("self.all(e, !(e.name in [{}]))", names.join(", "))
    }
}

/// Values of `app.kubernetes.io/component`.
pub mod component {
    pub const LABEL: &str = "app.kubernetes.io/component";
    /// The serving pods; part of [`crate::names::selector_labels`].
    pub const WEB: &str = "web";
    pub const MIGRATE: &str = "migrate";
    pub const GRAPH_RESYNC: &str = "graph-resync";
}

/// Pod-template annotation whose change rolls the pods when configuration changes.
pub const CONFIG_HASH_ANNOTATION: &str = "ahlt.io/config-hash";
/// The image a Job runs (Job names carry only a digest of it).
pub const IMAGE_ANNOTATION: &str = "ahlt.io/image";
/// The resync request a graph resync Job answers.
pub const RESYNC_REQUEST_ANNOTATION: &str = "ahlt.io/resync-request";

/// Secret values the reconciler chose: the ones already in the cluster, else freshly
/// generated ([`generate_session_key`], ...). Never logged: `Debug` redacts.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedSecrets {
    pub database_url: String,
    pub database_password: String,
    pub session_key: String,
    pub admin_password: String,
}

impl std::fmt::Debug for GeneratedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedSecrets")
            .field("database_url", &"<redacted>")
            .field("database_password", &"<redacted>")
            .field("session_key", &"<redacted>")
            .field("admin_password", &"<redacted>")
            .finish()
    }
}

/// Where the environment's database is reached (from the admin Secret); not secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseEndpoint {
    pub host: String,
    pub port: u16,
    pub sslmode: Option<String>,
}

/// Every object the operator applies for one environment in a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Children {
    pub config_map: ConfigMap,
    pub database_secret: Secret,
    pub app_secret: Secret,
    pub service: Service,
    pub deployment: Deployment,
    pub ingress: Option<Ingress>,
    pub route: Option<crate::gateway::HTTPRoute>,
    pub migration_job: Job,
}

/// Build every child. `serving_image` is what the Deployment runs (the spec's image only
/// once its migrations succeeded); the migration Job always runs the spec's image. The
/// pod-template config hash is computed here from the ConfigMap and both Secrets.
pub fn children(
    env: &ValidatedEnv,
    owner: &OwnerReference,
    secrets: &GeneratedSecrets,
    endpoint: &DatabaseEndpoint,
    serving_image: &str,
) -> Children {
    let config_map = config_map(env, owner);
    let database_secret = database_secret(
        env,
        owner,
        &secrets.database_url,
        DatabaseSecretParts {
            host: endpoint.host.clone(),
            port: endpoint.port,
            database: env.database.name.clone(),
            username: env.database.role.clone(),
            password: secrets.database_password.clone(),
            sslmode: endpoint.sslmode.clone(),
        },
    );
    let app_secret = app_secret(env, owner, &secrets.session_key, &secrets.admin_password);
    let hash = config_hash(&config_map, &[&database_secret, &app_secret]);
    Children {
        deployment: deployment(env, owner, serving_image, &hash),
        service: service(env, owner),
        ingress: ingress(env, owner),
        route: http_route(env, owner),
        migration_job: migration_job(env, owner, &env.image),
        config_map,
        database_secret,
        app_secret,
    }
}

/// Digest of the configuration the pods read at start: the ConfigMap data and the Secrets'
/// data. It goes into [`CONFIG_HASH_ANNOTATION`], so any change rolls the pods. Only a
/// digest leaves this function; the Secret values include a 384-bit session key, so the
/// digest reveals nothing about any of them.
pub fn config_hash(config_map: &ConfigMap, secrets: &[&Secret]) -> String {
    let mut hasher = Sha256::new();
    // Length-prefixed fields: no two different inputs produce the same byte stream.
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for (key, value) in config_map.data.iter().flatten() {
        field(key.as_bytes());
        field(value.as_bytes());
    }
    for secret in secrets {
        field(
            secret
                .metadata
                .name
                .as_deref()
                .unwrap_or_default()
                .as_bytes(),
        );
        for (key, value) in secret.data.iter().flatten() {
            field(key.as_bytes());
            field(&value.0);
        }
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Metadata of a child: name, namespace, standard labels (plus the component, when given),
/// controller ownerReference.
fn metadata(
    env: &ValidatedEnv,
    owner: &OwnerReference,
    name: String,
    component: Option<&str>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(env.namespace.clone()),
        labels: Some(labels(env, component)),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

fn labels(env: &ValidatedEnv, component: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = names::labels(&env.name);
    if let Some(component) = component {
        labels.insert(component::LABEL.to_owned(), component.to_owned());
    }
    labels
}

#[cfg(test)]
pub(crate) mod testing {
    //! Fixtures shared by the builder tests.

    use k8s_openapi::api::core::v1::EnvVar;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    use crate::crd::*;
    use crate::validate::{ValidatedEnv, validate};

    pub const UID: &str = "6f1c2a40-0000-4000-8000-000000000001";

    /// A minimal AhltEnvironment as read from the API server.
    pub fn cr(name: &str, namespace: &str) -> AhltEnvironment {
        let mut env = AhltEnvironment::new(
            name,
            AhltEnvironmentSpec {
                environment: EnvironmentProfile::Dev,
                image: ImageSpec {
                    repository: "registry.example.org/acme/ahlt".into(),
                    tag: "v1".into(),
                    pull_policy: None,
                    pull_secrets: None,
                },
                replicas: None,
                resources: None,
                suspend: None,
                database: DatabaseSpec {
                    admin_secret_ref: SecretReference {
                        name: "postgres-admin".into(),
                        namespace: Some("ahlt-infra".into()),
                    },
                    name: None,
                    role: None,
                    deletion_policy: None,
                },
                migrations: None,
                ingress: None,
                route: None,
                graph: None,
                app: None,
            },
        );
        env.metadata = ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            uid: Some(UID.into()),
            generation: Some(3),
            ..ObjectMeta::default()
        };
        env
    }

    /// Every optional field of the contract set.
    pub fn full_cr() -> AhltEnvironment {
        let mut env = cr("staging", "ahlt-staging");
        let spec = &mut env.spec;
        spec.environment = EnvironmentProfile::Staging;
        spec.image.pull_policy = Some(PullPolicy::Always);
        spec.image.pull_secrets = Some(vec!["gitlab-registry".into(), "mirror".into()]);
        spec.replicas = Some(3);
        spec.migrations = Some(MigrationsSpec {
            timeout_seconds: Some(900),
            backoff_limit: Some(2),
        });
        spec.ingress = Some(IngressSpec {
            host: "staging.example.org".into(),
            class_name: Some("nginx".into()),
            annotations: Some(
                [(
                    "nginx.ingress.kubernetes.io/proxy-body-size".to_owned(),
                    "8m".to_owned(),
                )]
                .into(),
            ),
            tls: Some(TlsSpec {
                secret_name: None,
                issuer_ref: Some(IssuerRef {
                    name: "letsencrypt".into(),
                    kind: IssuerKind::ClusterIssuer,
                }),
            }),
        });
        spec.graph = Some(GraphSpec {
            uri: "bolt://neo4j.ahlt-infra.svc:7687".into(),
            credentials_secret_ref: Some(LocalSecretReference {
                name: "neo4j-credentials".into(),
            }),
            resync_on_rollout: None,
            resync_request: Some("2024-05-01".into()),
        });
        spec.app = Some(AppSpec {
            log_level: Some("info,ahlt=debug".into()),
            cookie_secure: None,
            env: Some(vec![EnvVar {
                name: "DATABASE_MAX_CONNECTIONS".into(),
                value: Some("20".into()),
                ..EnvVar::default()
            }]),
        });
        env
    }

    pub fn minimal() -> ValidatedEnv {
        validate(&cr("dev", "ahlt-dev")).unwrap()
    }

    pub fn full() -> ValidatedEnv {
        validate(&full_cr()).unwrap()
    }

    pub fn owner() -> OwnerReference {
        super::owner_reference(&full_cr()).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::ByteString;

    use super::testing::*;
    use super::*;

    fn secrets() -> GeneratedSecrets {
        GeneratedSecrets {
            database_url: "postgres://ahlt_staging:pw-0123456789@db:5432/ahlt_staging".into(),
            database_password: "pw-0123456789".into(),
            session_key: "k".repeat(64),
            admin_password: "admin-0123456789".into(),
        }
    }

    fn endpoint() -> DatabaseEndpoint {
        DatabaseEndpoint {
            host: "db".into(),
            port: 5432,
            sslmode: Some("require".into()),
        }
    }

    /// Every variable a builder sets is on the managed list the schema refuses in
    /// `spec.app.env` (a user variable of the same name would duplicate or shadow it).
    #[test]
    fn every_variable_the_builders_set_is_managed() {
        let env = full();
        let owner = owner();
        let c = children(&env, &owner, &secrets(), &endpoint(), "old:image");
        let resync = resync_job(&env, &owner, "img:1", "r").expect("a graph is configured");
        let extra: Vec<&str> = env.app.extra_env.iter().map(|e| e.name.as_str()).collect();
        let mut set: Vec<String> = c.config_map.data.clone().unwrap().into_keys().collect();
        for pod in [
            &c.deployment.spec.as_ref().unwrap().template,
            &c.migration_job.spec.as_ref().unwrap().template,
            &resync.spec.as_ref().unwrap().template,
        ] {
            for container in &pod.spec.as_ref().unwrap().containers {
                set.extend(container.env.iter().flatten().map(|e| e.name.clone()));
            }
        }
        let unmanaged: Vec<&String> = set
            .iter()
            .filter(|n| !extra.contains(&n.as_str()) && !env_vars::MANAGED.contains(&n.as_str()))
            .collect();
        assert!(
            unmanaged.is_empty(),
            "not on env_vars::MANAGED: {unmanaged:?}"
        );
        for name in ["GRAPH_USERNAME", "GRAPH_PASSWORD", "TRUST_FORWARDED_FOR"] {
            assert!(set.iter().any(|n| n == name), "{name} is set by a builder");
        }
    }

    #[test]
    fn every_child_has_its_name_namespace_labels_and_owner() {
        let env = full();
        let owner = owner();
        let c = children(&env, &owner, &secrets(), &endpoint(), "old:image");
        let metas = [
            (&c.config_map.metadata, "staging-config"),
            (&c.database_secret.metadata, "staging-db"),
            (&c.app_secret.metadata, "staging-app"),
            (&c.service.metadata, "staging"),
            (&c.deployment.metadata, "staging"),
            (&c.ingress.as_ref().unwrap().metadata, "staging"),
            (
                &c.migration_job.metadata,
                &*names::migration_job("staging", &env.image),
            ),
        ];
        for (meta, name) in metas {
            assert_eq!(meta.name.as_deref(), Some(name));
            assert_eq!(meta.namespace.as_deref(), Some("ahlt-staging"));
            let labels = meta.labels.as_ref().unwrap();
            for (k, v) in names::labels("staging") {
                assert_eq!(labels.get(&k), Some(&v), "{name}: label {k}");
            }
            assert_eq!(meta.owner_references.as_deref(), Some(&[owner.clone()][..]));
        }
    }

    #[test]
    fn children_serve_the_given_image_and_migrate_the_spec_image() {
        let env = full();
        let c = children(&env, &owner(), &secrets(), &endpoint(), "old:image");
        let image = |spec: &Option<k8s_openapi::api::core::v1::PodSpec>| {
            spec.as_ref().unwrap().containers[0].image.clone().unwrap()
        };
        assert_eq!(
            image(&c.deployment.spec.unwrap().template.spec),
            "old:image"
        );
        assert_eq!(
            image(&c.migration_job.spec.unwrap().template.spec),
            "registry.example.org/acme/ahlt:v1"
        );
    }

    #[test]
    fn children_put_the_generated_values_in_the_secrets() {
        let c = children(&full(), &owner(), &secrets(), &endpoint(), "i:t");
        let db = c.database_secret.data.unwrap();
        assert_eq!(
            db["DATABASE_URL"],
            ByteString(secrets().database_url.into_bytes())
        );
        assert_eq!(db["password"], ByteString(b"pw-0123456789".to_vec()));
        assert_eq!(db["username"], ByteString(b"ahlt_staging".to_vec()));
        assert_eq!(db["sslmode"], ByteString(b"require".to_vec()));
        let app = c.app_secret.data.unwrap();
        assert_eq!(app["SESSION_KEY"], ByteString("k".repeat(64).into_bytes()));
    }

    #[test]
    fn the_config_hash_changes_with_config_and_secrets_and_only_then() {
        let env = full();
        let owner = owner();
        let hash = |secrets: &GeneratedSecrets, env: &ValidatedEnv| {
            let c = children(env, &owner, secrets, &endpoint(), "i:t");
            c.deployment
                .spec
                .unwrap()
                .template
                .metadata
                .unwrap()
                .annotations
                .unwrap()[CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let base = hash(&secrets(), &env);
        assert_eq!(base.len(), 32);
        assert_eq!(base, hash(&secrets(), &env), "deterministic");

        let mut rotated = secrets();
        rotated.session_key = "j".repeat(64);
        assert_ne!(base, hash(&rotated, &env));

        let mut louder = env.clone();
        louder.app.log_level = "debug".into();
        assert_ne!(base, hash(&secrets(), &louder));

        let mut scaled = env.clone();
        scaled.replicas = 7;
        assert_eq!(
            base,
            hash(&secrets(), &scaled),
            "scaling does not roll pods"
        );
    }

    #[test]
    fn debug_output_of_generated_secrets_is_redacted() {
        let text = format!("{:?}", secrets());
        assert!(!text.contains("pw-0123456789"), "{text}");
        assert!(!text.contains("kkkk"), "{text}");
        assert!(!text.contains("admin-0123456789"), "{text}");
    }
}
