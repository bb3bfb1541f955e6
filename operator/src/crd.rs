//! The `AhltEnvironment` custom resource (group `ahlt.io`, version `v1alpha1`).
//!
//! Doc comments become `kubectl explain` text. Validation lives in the schema: patterns,
//! ranges and enums through schemars, cross-field and transition rules as CEL
//! (`x-kubernetes-validations`), which `kube`'s `cel` feature also evaluates client-side.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// An environment of the ahlt governance app: its database and role, migrations, workload,
/// ingress and graph projection, reconciled by ahlt-operator.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "ahlt.io",
    version = "v1alpha1",
    kind = "AhltEnvironment",
    plural = "ahltenvironments",
    namespaced,
    status = "AhltEnvironmentStatus",
    shortname = "ahltenv",
    shortname = "ae",
    derive = "PartialEq",
    cel,
    doc = "An environment of the ahlt governance app, reconciled by ahlt-operator.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Env", type_ = "string", json_path = ".spec.environment"),
    printcolumn(name = "Image", type_ = "string", json_path = ".status.image"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AhltEnvironmentSpec {
    /// Environment profile: sets APP_ENV and the defaults for replicas and resources.
    pub environment: EnvironmentProfile,

    /// The app image. CI bumps `tag`; migrations run with the new image before pods roll.
    pub image: ImageSpec,

    /// Number of app pods (0 to 50). Default: 1, or 2 for prod. Driven by the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 50))]
    pub replicas: Option<i32>,

    /// Resource requests and limits of the app container. Default: per profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Stop changing anything for this environment; status then says Suspended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,

    /// The environment's PostgreSQL database and role.
    pub database: DatabaseSpec,

    /// How the migration Job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationsSpec>,

    /// Expose the app through an Ingress on its own host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// The graph projection (Neo4j or FalkorDB) of this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphSpec>,

    /// App settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<AppSpec>,
}

/// Environment profile.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EnvironmentProfile {
    Dev,
    Staging,
    Prod,
    Preview,
}

impl EnvironmentProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvironmentProfile::Dev => "dev",
            EnvironmentProfile::Staging => "staging",
            EnvironmentProfile::Prod => "prod",
            EnvironmentProfile::Preview => "preview",
        }
    }
}

/// The app image.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository, e.g. registry.gitlab.com/acme/ahlt.
    #[schemars(
        length(min = 1, max = 255),
        regex(pattern = r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$")
    )]
    pub repository: String,

    /// Image tag, e.g. a commit SHA. CI bumps this to roll out a new version.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
    )]
    pub tag: String,

    /// Image pull policy. Default: IfNotPresent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,

    /// Names of image pull Secrets in the environment's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secrets: Option<Vec<String>>,
}

impl ImageSpec {
    /// `repository:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// The environment's database. The operator creates the role and database with the admin
/// credentials and keeps the generated password in a Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(oldSelf.name) || (has(self.name) && self.name == oldSelf.name)").message("database.name is immutable once set"),
    validation = Rule::new("!has(oldSelf.role) || (has(self.role) && self.role == oldSelf.role)").message("database.role is immutable once set")
)]
pub struct DatabaseSpec {
    /// Secret with the PostgreSQL admin credentials: keys host, port, username, password,
    /// and optionally sslmode and database (the maintenance database, default postgres).
    pub admin_secret_ref: SecretReference,

    /// Database name. Default: ahlt_<metadata.name with - as _>. Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub name: Option<String>,

    /// Role (login user) name. Default: the database name. Immutable once set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]{0,62}$"))]
    pub role: Option<String>,

    /// What happens to the database and role when the AhltEnvironment is deleted. Default: Retain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
}

/// A Secret, by default in the AhltEnvironment's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Secret name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
    /// Secret namespace. Default: the AhltEnvironment's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub namespace: Option<String>,
}

/// A Secret in the AhltEnvironment's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct LocalSecretReference {
    /// Secret name.
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub name: String,
}

#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum DeletionPolicy {
    /// Keep the database and role (the default).
    #[default]
    Retain,
    /// Drop the database and role.
    Delete,
}

/// Migration Job settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct MigrationsSpec {
    /// Deadline of the migration Job in seconds (30 to 86400). Default: 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30, max = 86400))]
    pub timeout_seconds: Option<i64>,
    /// Retries of the migration Job (0 to 10). Default: 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: Option<i32>,
}

/// Ingress for the app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// Host name, e.g. dev.local or app.example.org.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$')").message("ingress.host must be a lowercase DNS name"))]
    pub host: String,

    /// IngressClass name (nginx, traefik, ...). Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub class_name: Option<String>,

    /// Extra annotations on the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,

    /// TLS: an existing Secret, or a cert-manager issuer that creates one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
}

/// Exactly one of `secretName` (an existing certificate, e.g. from mkcert) or `issuerRef`
/// (cert-manager issues the certificate into `<name>-tls`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.secretName) != has(self.issuerRef)").message("tls needs exactly one of secretName or issuerRef"))]
pub struct TlsSpec {
    /// An existing kubernetes.io/tls Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(min = 1, max = 253),
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    )]
    pub secret_name: Option<String>,
    /// A cert-manager Issuer or ClusterIssuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_ref: Option<IssuerRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
pub struct IssuerRef {
    /// Issuer name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Issuer or ClusterIssuer.
    pub kind: IssuerKind,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum IssuerKind {
    Issuer,
    ClusterIssuer,
}

/// The graph projection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphSpec {
    /// bolt://, neo4j:// (Neo4j, also +s/+ssc) or falkor:// (FalkorDB) URI.
    #[schemars(
        length(min = 1, max = 2048),
        regex(pattern = r"^(bolt|neo4j)(\+s|\+ssc)?://[^\s/]+(/.*)?$|^falkors?://[^\s/]+(/.*)?$")
    )]
    pub uri: String,
    /// Secret with keys username and password for the graph server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<LocalSecretReference>,
    /// Resync the graph after every successful rollout. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resync_on_rollout: Option<bool>,
    /// Any new value asks for a resync (e.g. a timestamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub resync_request: Option<String>,
}

/// App settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// RUST_LOG filter, e.g. info or info,ahlt=debug. Default: info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), regex(pattern = r"^[A-Za-z0-9_:=,.\-]+$"))]
    pub log_level: Option<String>,
    /// Send cookies only over HTTPS. Default: true when the ingress has TLS, else false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_secure: Option<bool>,
    /// Extra environment variables for the app container (not the ones the operator manages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.all(e, !(e.name in ['DATABASE_URL', 'SESSION_KEY', 'ADMIN_PASSWORD', 'APP_ENV', 'AHLT_ENV_NAME', 'PORT', 'RUST_LOG', 'COOKIE_SECURE']))").message("app.env must not set variables the operator manages"))]
    pub env: Option<Vec<EnvVar>>,
}

/// Observed state. Every condition carries the generation it describes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AhltEnvironmentStatus {
    /// The generation the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, DatabaseReady, MigrationsApplied, WorkloadAvailable, IngressReady, GraphSynced.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Where users reach the environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The image actually serving (changes only after the new pods are available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The image whose migrations succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_image: Option<String>,
    /// Available app pods (scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label selector of the app pods (scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<GraphStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    pub name: String,
    pub role: String,
    /// Secret holding DATABASE_URL and its parts.
    pub secret_name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resync_request: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resync_time: Option<String>,
}
